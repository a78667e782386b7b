"""The consent ledger: every change a row with source, time and evidence; state derived from it."""
