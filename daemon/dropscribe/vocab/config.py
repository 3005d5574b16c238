"""The whole config, resolved: ``Config`` with its ``Inbox``\\es, each a stack of
``Layer``\\s, and the shared ledger's ``SharedLedger``. ``config/settings.py`` builds
them from the YAML file; everything else reads them."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dropscribe.vocab.endpoints import Endpoint


@dataclass(frozen=True)
class Layer:
    """Settings given at one level (defaults, inbox or rule): only the keys set there."""

    values: dict[str, Any]
    match: str | None = None
    folder: str | None = None
    language: tuple[str, ...] = ()  # a rule by language: the detected one is one of these


@dataclass(frozen=True)
class Inbox:
    name: str
    path: Path
    recursive: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    layers: tuple[Layer, ...]  # defaults, the inbox itself, then its rules in order
    follow_symlinks: bool = False
    failed_dir: Path = Path()  # where failed sources go, with a .error.json each
    done_dir: Path = Path()  # where sources go after success with after: move
    watch: str = "auto"  # auto | native (inotify) | poll
    poll_seconds: float = 5.0


@dataclass(frozen=True)
class SharedLedger:
    """``ledger:``, resolved: the PostgreSQL database several hosts share."""

    url: str  # holds no password (one in the URL is refused)
    password: str | None = field(default=None, repr=False)
    host: str = ""  # this host's name among them ("": the hostname)
    lease_seconds: float = 60.0

    def host_name(self) -> str:
        return self.host or socket.gethostname()


# Longest a stop takes past shutdown_grace (grace18): worker processes report, the radar's
# look in flight ends; a write waiting for a ledger held elsewhere is given up at the grace.
STOP_MARGIN = 1.0
# uploads19: how much longer a write keeping what was paid for (a job's fresh transcript,
# a chunk's, a finished file) waits for a ledger held elsewhere, and the stop for its job:
# a sibling's write of a few ms lost a paid request at shutdown_grace: 0 (asked again)
KEPT = STOP_MARGIN / 2


@dataclass(frozen=True)
class Config:
    source: Path
    endpoints: dict[str, Endpoint]
    inboxes: tuple[Inbox, ...]
    workers: int
    state_dir: Path
    rescan_seconds: float
    shutdown_grace: float
    log_format: str
    log_level: str
    metrics: tuple[str, int] | None = None  # (host, port) of /metrics and /healthz
    processes: int = 1  # worker processes sharing the workers (1: threads in this one)
    ledger: SharedLedger | None = None  # None: SQLite in state_dir, this host's alone
