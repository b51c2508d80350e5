"""Complaints on any payment a citizen made, above the payment modules (DESIGN.md)."""
