"""Which ledger a config names: SQLite in state_dir (the default), or a PostgreSQL
database several hosts share (``ledger: url:``)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dropscribe.ledger.interface import Ledger, Reports
    from dropscribe.vocab.config import Config


@runtime_checkable
class Announcing(Protocol):
    """A ledger that can be out of reach for a while, and says when it is back."""

    on_available: Callable[[], None] | None


def open_ledger(
    config: Config,
    *,
    daemon: bool = True,
    pool_size: int | None = None,
    reading: bool = False,
    migrated: bool = False,
) -> Ledger:
    """The config's ledger, open. ``daemon``: this process serves files (it says so to
    the other hosts and renews its leases); a command only reads and writes rows.
    ``reading``: the command only reads, or a worker process's main process migrated the
    ledger (SQLite: no write turn taken when none is needed). ``migrated``: a worker
    process, whose main process just migrated the ledger (PostgreSQL: no DDL, which
    would wait for a table another session holds; a command's open still repairs what is
    missing, as the search index's triggers).

    Raises SetupError (a shared ledger that cannot be reached), OSError or
    LedgerError (a state_dir that cannot be used)."""
    if config.ledger is None:
        path = config.state_dir / LEDGER_NAME
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_file(path)  # SQLite gives its -wal and -shm the same bits
        return SqliteLedger(path, reading=reading)  # reading: no write turn if none needed
    from dropscribe.ledger.places import Places  # noqa: PLC0415 - with the shared ledger only
    from dropscribe.ledger.postgres import PostgresLedger  # noqa: PLC0415 - psycopg is an extra

    return PostgresLedger(
        config.ledger,
        Places(inbox_places(config)),
        pool_size=pool_size or config.workers,
        daemon=daemon,
        migrated=migrated,
        state_dir=config.state_dir,
    )


def private_file(path: Path) -> int:
    """Make ``path`` (a regular file, not followed if a link) if missing, readable by
    this user alone whatever the umask (its permission bits & 0600); return the bits it
    had (0 when it was made)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # the umask may have taken the owner's bits too
        os.close(fd)
        return 0
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o600)
        return stat.S_IMODE(st.st_mode)
    finally:
        os.close(fd)


def existing(config: Config) -> Reports | None:
    """The config's ledger for a command that reads it (status, explain, rehearse), or
    None when it is SQLite and the daemon never made it. Raises as ``open_ledger``."""
    if config.ledger is None and not (config.state_dir / LEDGER_NAME).exists():
        return None
    return open_ledger(config, daemon=False, pool_size=1, reading=True)


def inbox_places(config: Config) -> list[tuple[str, Path]]:
    """Each inbox's name and this host's path to it, for a shared ledger's ``Places``."""
    return [(inbox.name, inbox.path) for inbox in config.inboxes]


def follow_reload(ledger: Ledger, config: Config) -> None:
    """A reloaded config's inboxes, for a shared ledger's paths."""
    places = getattr(ledger, "places", None)
    if places is not None:
        places.update(inbox_places(config))
