"""Daily payouts of what was collected for others: billers' settlements and the state treasury remittance."""
