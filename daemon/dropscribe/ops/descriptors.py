"""The process's descriptor budget.

Uploads, the ledger, watches and sidecars need descriptors; systemd's default soft
limit (1024) is a guard for programs that use select(), which we do not. So the
soft limit is raised to the hard one at start (worker processes inherit it), and
what outsiders can make the daemon open is bounded apart from it: the metrics
server never holds more than ``serving.DESCRIPTORS``.
"""

from __future__ import annotations

import resource


def raise_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) as they are."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):  # a hard limit the kernel will not give (nr_open)
            return soft, hard
        soft = hard
    return soft, hard
