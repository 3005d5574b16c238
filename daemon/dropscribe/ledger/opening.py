"""Which ledger a config names: SQLite in state_dir (the default), or a PostgreSQL
database several hosts share (``ledger: url:``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dropscribe.config.settings import Config
    from dropscribe.ledger.interface import Ledger


@runtime_checkable
class Announcing(Protocol):
    """A ledger that can be out of reach for a while, and says when it is back."""

    on_available: Callable[[], None] | None


def open_ledger(config: Config, *, daemon: bool = True, pool_size: int | None = None) -> Ledger:
    """The config's ledger, open. ``daemon``: this process serves files (it says so to
    the other hosts and renews its leases); a command only reads and writes rows.

    Raises SetupError (a shared ledger that cannot be reached), OSError or
    sqlite3.Error (a state_dir that cannot be used)."""
    if config.ledger is None:
        return SqliteLedger(config.state_dir / LEDGER_NAME)
    from dropscribe.ledger.places import Places  # noqa: PLC0415 - with the shared ledger only
    from dropscribe.ledger.postgres import PostgresLedger  # noqa: PLC0415 - psycopg is an extra

    return PostgresLedger(
        config.ledger,
        Places(inbox_places(config)),
        pool_size=pool_size or config.workers,
        daemon=daemon,
    )


def existing(config: Config) -> Ledger | None:
    """The config's ledger for a command (status, explain, retry, migrate), or None when
    it is SQLite and the daemon never made it. Raises as ``open_ledger``."""
    if config.ledger is None and not (config.state_dir / LEDGER_NAME).exists():
        return None
    return open_ledger(config, daemon=False, pool_size=1)


def inbox_places(config: Config) -> list[tuple[str, Path]]:
    """Each inbox's name and this host's path to it, for a shared ledger's ``Places``."""
    return [(inbox.name, inbox.path) for inbox in config.inboxes]


def follow_reload(ledger: Ledger, config: Config) -> None:
    """A reloaded config's inboxes, for a shared ledger's paths."""
    places = getattr(ledger, "places", None)
    if places is not None:
        places.update(inbox_places(config))
