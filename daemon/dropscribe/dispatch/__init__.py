"""Settled files handed to worker threads (pool) and worker processes (processes, child)."""
