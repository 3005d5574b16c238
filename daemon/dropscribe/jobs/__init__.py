"""One settled file end to end: the Job value (job), its way in order (runner), how a
fresh transcript is sent (plan), and how it ended (verdicts)."""
