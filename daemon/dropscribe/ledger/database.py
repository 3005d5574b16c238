"""The shared ledger's connection: a pool of PostgreSQL connections, and whether the
database answers.

A database that cannot be reached raises ``LedgerUnavailable``, any other error of
psycopg's ``LedgerError``; ``ledger.unavailable``
is logged once when that starts and ``ledger.available`` when it ends. While it is
known to be down, a daemon's calls fail at once (no worker waits on the pool); the
heartbeat ``probe``s, and notices when it is back.

A stopping daemon gives the ledger up (``give_up_at``, pggrace18): when its grace is over
no statement waits any longer, whether for a lock another session holds (a ``psql`` left
in ``BEGIN; LOCK TABLE files ...``), a pooled connection or a server that hangs. Those in
flight then are cancelled (psycopg's ``cancel_safe``, from a thread of its own: the
server's 30-s statement_timeout is far past what systemd or Kubernetes wait), each later
one gets ``GIVEN_UP`` seconds, lock waits included; the transaction rolls back and the
caller gets ``LedgerGaveUp``, as from the SQLite ledger (grace18).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool
import structlog

from dropscribe.errors import LedgerError, LedgerGaveUp, LedgerUnavailable, SetupError
from dropscribe.vocab.config import STOP_MARGIN

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dropscribe.vocab.config import SharedLedger

log = structlog.get_logger("dropscribe")

CONNECT_SECONDS = 5.0  # a connection attempt, and a wait for a pooled connection
START_SECONDS = 10.0  # how long a starting daemon tries to reach the database
STATEMENT_SECONDS = 30.0  # longest any one statement may run
LOST = (psycopg.OperationalError, psycopg.InterfaceError)  # the database, not the SQL
# Given up (pggrace18): how long a statement, its lock wait or a wait for a pooled
# connection may take then; and how often one in flight is cancelled again until it ends
# (a cancel between two statements of a transaction finds nothing to cancel).
GIVEN_UP = 0.1
CUT = (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)  # how a statement ends
CANCEL_EVERY = 0.05
# What a cancel gets (seconds; raised as CancellationTimeout past it): a server that
# cannot be reached is not waited for, nor are the other connections' cancels.
CANCEL_SECONDS = 0.2
# The statements given up end this much before the moment asked for: the job they fail
# lets its claim go before the stop counts the jobs still running (and abandons those
# with their claims, which keep their files from every host until the lease runs out).
GIVE_UP_LEAD = STOP_MARGIN / 4
# That moment's bounds for one transaction; set as it begins, lost when it ends.
_BOUNDED = (
    "SELECT set_config('lock_timeout', %(ms)s, true), set_config('statement_timeout', %(ms)s, true)"
)


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
        self._until: float | None = None  # give_up_at's moment (monotonic), GIVE_UP_LEAD early
        self._over = False  # that moment has come: no statement waits
        self._busy: set[psycopg.Connection[Any]] = set()  # checked out before it came
        self._busy_lock = threading.Lock()
        self._closed = threading.Event()
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
        self._closed.set()
        self._pool.close(timeout=GIVEN_UP if self._over else 5.0)

    def give_up_at(self, when: float) -> None:
        """From ``when`` (monotonic; ``GIVE_UP_LEAD`` before it) no statement waits: those
        in flight are cancelled, later ones bounded by ``GIVEN_UP``; ``LedgerGaveUp``."""
        until = when - GIVE_UP_LEAD
        with self._busy_lock:
            if self._until is not None and self._until <= until:
                return
            self._until = until
        threading.Thread(
            target=self._give_up, args=(until,), name="dropscribe-ledger-give-up", daemon=True
        ).start()

    def _give_up(self, until: float) -> None:
        """At ``until``: cancel what is in flight, again every ``CANCEL_EVERY`` until
        each of those connections is back (or ``STOP_MARGIN`` is over: the stop is)."""
        if self._closed.wait(max(0.0, until - time.monotonic())):
            return
        with self._busy_lock:
            if self._until is not None and self._until < until:
                return  # an earlier give-up did it
            self._over = True
            given = set(self._busy)
        ends = until + STOP_MARGIN
        while not self._closed.is_set() and time.monotonic() < ends:
            with self._busy_lock:
                given &= self._busy
            if not given:
                return
            for db in given:
                with contextlib.suppress(psycopg.Error):  # gone, or the server away
                    db.cancel_safe(timeout=CANCEL_SECONDS)
            self._closed.wait(CANCEL_EVERY)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, waited for no longer than the give-up allows; one had
        before it is known to its thread (``_give_up`` cancels what it runs)."""
        wait = CONNECT_SECONDS
        if self._until is not None:
            wait = max(GIVEN_UP, min(wait, self._until - time.monotonic()))
        with self._pool.connection(timeout=wait) as db:
            with self._busy_lock:
                known = not self._over
                if known:
                    self._busy.add(db)
            try:
                yield db
            finally:
                if known:
                    with self._busy_lock:
                        self._busy.discard(db)

    @contextlib.contextmanager
    def tx(self, *, probe: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction, committed when the block ends."""
        self._refuse_while_down(probe)
        try:
            with self._connection() as db, db.transaction():
                if self._over:
                    db.execute(_BOUNDED, {"ms": f"{GIVEN_UP * 1000:.0f}"})
                yield db
        except psycopg.Error as exc:
            raise self._error(exc) from _cause(exc)
        self._available()

    def rows(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        """One statement's rows, outside any transaction (in one once given up: its
        bounds are the transaction's)."""
        self._refuse_while_down(probe=False)
        try:
            with self._connection() as db:
                if not self._over:
                    rows = db.execute(sql, args).fetchall()
                else:
                    with db.transaction():
                        db.execute(_BOUNDED, {"ms": f"{GIVEN_UP * 1000:.0f}"})
                        rows = db.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from _cause(exc)
        self._available()
        return rows

    def _error(self, exc: psycopg.Error) -> LedgerError:
        """psycopg's ``exc`` as ours: given up (the stop's, not the database's fault),
        the database away, or the statement's own error."""
        cut = (
            psycopg.errors.QueryCanceled,
            psycopg.errors.LockNotAvailable,
            psycopg_pool.PoolTimeout,
        )
        if self._over and isinstance(exc, cut):
            return LedgerGaveUp(
                f"gave up the ledger at {self.url}: {why(exc)} (the daemon is stopping)"
            )
        if isinstance(exc, LOST):
            return self._unavailable(exc)
        return LedgerError(why(exc))  # the statement, not the database: said as ours

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


def _cause(exc: psycopg.Error) -> psycopg.Error | None:
    """What our error keeps as its cause: none for a database away (its message says
    libpq's reason; the stack of psycopg's pool says nothing more)."""
    return None if isinstance(exc, LOST) and not isinstance(exc, CUT) else exc


def why(exc: BaseException) -> str:
    """The first line of a database error: libpq's reason."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__
