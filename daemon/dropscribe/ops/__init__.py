"""Running it: structured logs, metrics, systemd notifications, the terminal's progress bar."""
