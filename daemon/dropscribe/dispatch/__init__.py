"""Settled files handed to workers: one worker host (host) of threads (pool) in a process,
and worker processes (processes, child) each running that host behind a pipe, their
upload metrics merged for the main process (merged)."""
