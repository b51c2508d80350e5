"""Administration: the console's API (dead letters today; reconciliation, reports and audit to come)."""
