"""The ledger: what was seen, uploaded, done and failed (store), kept in SQLite with
group-committed writes, one daemon per state directory."""
