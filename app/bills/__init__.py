"""Bills: billers, bill presentment, saved customer codes, the my-bills inbox."""
