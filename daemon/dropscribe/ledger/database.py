"""The shared ledger's connection: a pool of PostgreSQL connections, and whether the
database answers.

A database that cannot be reached raises ``LedgerUnavailable``, any other error of
psycopg's ``LedgerError``; ``ledger.unavailable``
is logged once when that starts and ``ledger.available`` when it ends. While it is
known to be down, a daemon's calls fail at once (no worker waits on the pool); the
heartbeat ``probe``s, and notices when it is back.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
import structlog

from dropscribe.errors import LedgerError, LedgerUnavailable, SetupError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dropscribe.vocab.config import SharedLedger

log = structlog.get_logger("dropscribe")

CONNECT_SECONDS = 5.0  # a connection attempt, and a wait for a pooled connection
START_SECONDS = 10.0  # how long a starting daemon tries to reach the database
STATEMENT_SECONDS = 30.0  # longest any one statement may run
LOST = (psycopg.OperationalError, psycopg.InterfaceError)  # the database, not the SQL


class Database:
    """Pooled connections to the shared ledger's database (thread-safe)."""

    def __init__(self, settings: SharedLedger, *, pool_size: int, fail_fast: bool) -> None:
        """Connect, or raise SetupError with libpq's reason. ``fail_fast``: while the
        database is down, calls fail at once (a daemon, whose heartbeat probes)."""
        self.url = settings.url  # it holds no password
        self.on_available: Callable[[], None] | None = None  # called when it is back
        self._fail_fast = fail_fast
        self._up = True
        self._up_lock = threading.Lock()
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": f"dropscribe {settings.host_name()}",
            "connect_timeout": int(CONNECT_SECONDS),
            # a cut network is noticed in seconds, not after the kernel's two hours
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 15_000,
            # a server that hangs (not gone, stuck) fails the statement, not the worker
            "options": f"-c statement_timeout={STATEMENT_SECONDS * 1000:.0f}",
        }
        if settings.password is not None:
            kwargs["password"] = settings.password
        self._pool = psycopg_pool.ConnectionPool(
            settings.url,
            min_size=1,
            max_size=pool_size + 2,  # the heartbeat's, and the main loop's
            kwargs=kwargs,
            timeout=CONNECT_SECONDS,
            check=psycopg_pool.ConnectionPool.check_connection,
            reconnect_timeout=365 * 86400.0,  # keep trying for as long as it takes
            name="dropscribe-ledger",
            open=False,
        )
        try:
            # one plain connection first: the pool would only say it timed out, where
            # libpq says why (refused, no such database, password authentication failed)
            psycopg.connect(settings.url, **kwargs).close()
            self._pool.open(wait=True, timeout=START_SECONDS)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise self.setup_error(exc) from None

    def setup_error(self, exc: BaseException) -> SetupError:
        return SetupError(
            f"cannot use the ledger at {self.url}: {why(exc)} (is the server up, and may"
            " this user connect and create tables?)"
        )

    def close(self) -> None:
        self._pool.close()

    @contextlib.contextmanager
    def tx(self, *, probe: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction, committed when the block ends."""
        self._refuse_while_down(probe)
        try:
            with self._pool.connection() as db, db.transaction():
                yield db
        except LOST as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:  # the statement, not the database: said as ours
            raise LedgerError(why(exc)) from exc
        self._available()

    def rows(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        """One statement's rows, outside any transaction."""
        self._refuse_while_down(probe=False)
        try:
            with self._pool.connection() as db:
                rows = db.execute(sql, args).fetchall()
        except LOST as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:
            raise LedgerError(why(exc)) from exc
        self._available()
        return rows

    def _refuse_while_down(self, probe: bool) -> None:
        if not self._up and not probe and self._fail_fast:
            raise LedgerUnavailable(f"the ledger at {self.url} cannot be reached")

    def _unavailable(self, exc: Exception) -> LedgerUnavailable:
        reason = why(exc)
        with self._up_lock:
            was_up, self._up = self._up, False
        if was_up:
            log.error(
                "ledger.unavailable",
                ledger=self.url,
                error=reason,
                action="no file is claimed until the database answers again; files wait",
            )
        return LedgerUnavailable(f"the ledger at {self.url} cannot be reached: {reason}")

    def _available(self) -> None:
        if self._up:
            return
        with self._up_lock:
            was_up, self._up = self._up, True
        if not was_up:
            log.info("ledger.available", ledger=self.url)
            if self.on_available is not None:
                self.on_available()


def why(exc: BaseException) -> str:
    """The first line of a database error: libpq's reason."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
