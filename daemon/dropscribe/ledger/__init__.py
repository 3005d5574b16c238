"""The ledger: what was seen, uploaded, done and failed. The daemon talks to it through
the ``Ledger`` protocol (interface); ``store.SqliteLedger`` keeps it in SQLite with
group-committed writes, one daemon per state directory (statedir)."""
