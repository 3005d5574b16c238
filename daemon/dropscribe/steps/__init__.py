"""The steps after the transcript (issue 33): summaries and translations on a chat
endpoint, each stored once in the ledger and written as its own sidecars. The entry
point is ``stepper.Stepper``."""
