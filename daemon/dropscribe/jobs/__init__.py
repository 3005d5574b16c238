"""One file's job (runner): fingerprint, ledger, upload or reuse, sidecars, and how it
ended (verdicts); a long recording in chunks (chunked, voiceprints)."""
