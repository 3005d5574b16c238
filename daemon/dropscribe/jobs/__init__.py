"""One settled file end to end: the Job value (job), its way in order (runner), how a
fresh transcript is sent (decide: the plan, pure; plan: carried out), a long recording in
chunks (chunked, voiceprints), and how it ended (verdicts)."""
