"""The command line (cli) and the commands that read the ledger (status, explain) or put
quarantined recordings back (retry)."""
