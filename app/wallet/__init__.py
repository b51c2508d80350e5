"""The wallet: a double-entry ledger, citizens' wallets, transfers and limits."""
