"""Claims on jobs in a shared ledger, their leases and the heartbeat that renews them.

``claims`` holds one row per job in some host's hands (the key is the primary key:
one running claim per job). A claim is taken in one statement that succeeds only
where no row exists or the row's lease has run out; it carries a token from a
sequence, so a later claim of the same job always holds a higher one. The heartbeat
renews this daemon's leases and its row in ``hosts``; a host that dies loses its
claims after ``lease_seconds``, and the next host to look takes the job over. Leases
are timed by the database's clock.

leftovers21: every process of one daemon (the main process and its ``processes: N``
workers) ends its run with the same mark, made of this boot and the state_dir (its
device and inode), so a daemon's own processes, and the predecessor a restart finds still
beating, are not taken for another host of the same name: ``ledger.host_name_in_use`` is
said (by the main process alone) of another daemon's runs only, on another host or with
another state_dir.

Fencing: a host stuck past its lease must not publish over the new owner. ``fence()``
checks the token inside the transaction that stores the transcript and claims the
sidecar names (the claim's row locked); ``confirm()`` checks it just before the
sidecars get their final names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe import __version__
from dropscribe.errors import ClaimedElsewhere, Fenced, LedgerUnavailable
from dropscribe.ledger.interface import Claim

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import psycopg

    from dropscribe.ledger.database import Database
    from dropscribe.vocab.states import JobKey

log = structlog.get_logger("dropscribe")

FORGET_HOSTS_AFTER = "7 days"  # daemons whose heartbeat is older leave `status`


@dataclass(frozen=True)
class HostRow:
    host: str
    run: str
    version: str
    beat_age: float  # seconds since its last heartbeat
    claims: int


@dataclass(frozen=True)
class ClaimRow:
    host: str
    path: str
    key: str
    token: int
    age: float  # seconds since it was claimed
    left: float  # seconds until its lease runs out (unless renewed)


class Leases:
    """This daemon's claims (``run``: one per process) in the shared ledger."""

    def __init__(
        self,
        db: Database,
        host: str,
        lease_seconds: float,
        *,
        beating: bool,
        state_dir: Path | None = None,
        worker: bool = False,
    ) -> None:
        """``beating``: say this daemon is alive and renew its leases (a daemon's, not a
        command's); its thread runs until ``close()``. ``state_dir``: the daemon's, whose
        processes share the mark ending their runs (None: a mark of this process's own);
        a ``worker`` process warns of no other daemon (its main process did)."""
        self._db = db
        self.host = host
        self._mark = mark(state_dir)
        self.run = f"{host}:{os.getpid()}:{secrets.token_hex(4)}@{self._mark}"
        self._worker = worker
        self._lease = self.lease_seconds = lease_seconds  # hooks20: owed.SharedOwedRows
        self._orphans: set[int] = set()  # claims ended while the database was away
        self._orphans_lock = threading.Lock()
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        if beating:
            self._announce()
            self._beat()
            self._heart = threading.Thread(target=self._beating, name="dropscribe-heartbeat")
            self._heart.daemon = True
            self._heart.start()

    def close(self) -> None:
        """Stop the heartbeat and let this daemon's claims go."""
        self._stop.set()
        if self._heart is None:
            return
        self._heart.join()
        with contextlib.suppress(LedgerUnavailable), self._db.tx() as db:
            db.execute("DELETE FROM claims WHERE run = %s", (self.run,))
            db.execute("DELETE FROM hosts WHERE run = %s", (self.run,))

    # ------------------------------------------------------------ claims

    @contextlib.contextmanager
    def hold(self, key: JobKey, where: str) -> Iterator[Claim]:
        """Claim ``key`` (``where``: its path as stored, for reports) while the block
        runs; raise ClaimedElsewhere if another host holds it."""
        args = {"key": str(key), "host": self.host, "run": self.run, "path": where}
        with self._db.tx() as db:
            row = db.execute(_CLAIM, {**args, "lease": self._lease}).fetchone()
            if row is None:
                held = db.execute(
                    "SELECT host, extract(epoch FROM expires - now()) FROM claims WHERE key = %s",
                    (str(key),),
                ).fetchone()
        if row is None:
            host, left = held if held is not None else ("another host", 0.0)
            raise ClaimedElsewhere(str(host), max(0.0, float(left)))
        token, before = row
        if before is not None and before != self.run:
            log.warning("claim.taken_over", key=str(key), from_run=before, token=token)
        claim = Claim(key, int(token))
        try:
            yield claim
        finally:
            self._release(claim)

    def _release(self, claim: Claim) -> None:
        try:
            with self._db.tx() as db:
                db.execute(
                    "DELETE FROM claims WHERE key = %s AND token = %s",
                    (str(claim.key), claim.token),
                )
        except LedgerUnavailable:  # the heartbeat lets it go once the database is back
            with self._orphans_lock:
                self._orphans.add(claim.token)

    def confirm(self, claim: Claim) -> None:
        """Raise Fenced unless ``claim`` is still this daemon's (or cannot be known)."""
        try:
            rows = self._db.rows(
                "SELECT 1 FROM claims WHERE key = %s AND token = %s AND expires > now()",
                (str(claim.key), claim.token),
            )
        except LedgerUnavailable as exc:
            raise Fenced(f"cannot confirm the claim on {claim.key}: {exc}") from None
        if not rows:
            raise _ran_out(claim)

    @staticmethod
    def fence(db: psycopg.Connection[Any], claim: Claim) -> None:
        """In the caller's transaction: raise Fenced unless ``claim`` is still current;
        its row stays locked, so no takeover slips in before the commit."""
        row = db.execute(
            "SELECT token, expires > now() FROM claims WHERE key = %s FOR UPDATE",
            (str(claim.key),),
        ).fetchone()
        if row is None or row[0] != claim.token or not row[1]:
            raise _ran_out(claim)

    # ------------------------------------------------------------ the heartbeat

    def _announce(self) -> None:
        """Warn if another live daemon already uses this host name (this daemon's own
        runs, its mark's, aside); forget long-silent ones."""
        with self._db.tx() as db:
            others = db.execute(
                "SELECT run FROM hosts WHERE host = %s AND beat > now() - %s * interval '1s'"
                " AND run NOT LIKE %s ORDER BY started",
                (self.host, self._lease, f"%@{self._mark}"),
            ).fetchall()
            db.execute("DELETE FROM hosts WHERE beat < now() - %s::interval", (FORGET_HOSTS_AFTER,))
        if others and not self._worker:
            log.warning(
                "ledger.host_name_in_use",
                host=self.host,
                runs=[run for (run,) in others],
                action="give each host its own ledger.host (or hostname)",
            )

    def _beat(self) -> None:
        """Say this daemon is alive and renew its leases (one short transaction)."""
        with self._orphans_lock:
            orphans = list(self._orphans)
        with self._db.tx(probe=True) as db:
            db.execute(
                "INSERT INTO hosts (run, host, pid, version, started, beat)"
                " VALUES (%s, %s, %s, %s, now(), now())"
                " ON CONFLICT (run) DO UPDATE SET beat = now()",
                (self.run, self.host, os.getpid(), __version__),
            )
            # a claim whose release failed (the database was away) is let go now, not
            # kept alive by this very heartbeat; every other one of ours is renewed
            db.execute("DELETE FROM claims WHERE run = %s AND token = ANY(%s)", (self.run, orphans))
            db.execute(
                "UPDATE claims SET expires = now() + %s * interval '1s' WHERE run = %s",
                (self._lease, self.run),
            )
        with self._orphans_lock:
            self._orphans.difference_update(orphans)

    def _beating(self) -> None:
        while not self._stop.wait(self._lease / 4):
            with contextlib.suppress(LedgerUnavailable):  # said so once, by the Database
                self._beat()

    # ------------------------------------------------------------ reports

    def hosts(self) -> list[HostRow]:
        """Every daemon that shares the ledger (its last heartbeat, its claims)."""
        rows = self._db.rows(
            "SELECT h.host, h.run, h.version, extract(epoch FROM now() - h.beat),"
            " count(c.key) FROM hosts h LEFT JOIN claims c ON c.run = h.run"
            " GROUP BY h.host, h.run, h.version, h.beat ORDER BY h.host, h.run"
        )
        return [HostRow(str(h), str(r), str(v), float(age), int(n)) for h, r, v, age, n in rows]

    def claims(self, shown: Callable[[str], str]) -> list[ClaimRow]:
        """The jobs in some host's hands now, oldest first; paths as ``shown`` names them."""
        rows = self._db.rows(
            "SELECT host, path, key, token, extract(epoch FROM now() - claimed),"
            " extract(epoch FROM expires - now()) FROM claims ORDER BY claimed"
        )
        return [
            ClaimRow(str(h), shown(str(p)), str(k), int(t), float(a), float(x))
            for h, p, k, t, a, x in rows
        ]


def mark(state_dir: Path | None) -> str:
    """What ends the runs of every process of the daemon that holds ``state_dir``: this
    boot's id and the folder's device and inode, hashed (a cloned machine boots with an
    id of its own, a copied state_dir has its own inode); random for none (a ledger
    opened alone, as a test's, is a daemon of its own)."""
    if state_dir is None:
        return secrets.token_hex(4)
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        found = state_dir.stat()
    except OSError:
        return secrets.token_hex(4)
    where = f"{boot}:{found.st_dev}:{found.st_ino}".encode()
    return hashlib.sha256(where).hexdigest()[:8]


def _ran_out(claim: Claim) -> Fenced:
    return Fenced(f"the claim on {claim.key} ran out; another host may hold it now")


# One statement: a new claim, or a takeover of one whose lease ran out; no row back
# when another host holds the job. ``previous`` is the run it was taken from (None: a
# new claim), set from the old row inside the update itself, so that it is never a
# guess made from an earlier snapshot.
_CLAIM = """
INSERT INTO claims AS c (key, host, run, token, path, claimed, expires, previous)
VALUES (%(key)s, %(host)s, %(run)s, nextval('claim_tokens'), %(path)s, now(),
        now() + %(lease)s * interval '1s', NULL)
ON CONFLICT (key) DO UPDATE SET host = excluded.host, run = excluded.run,
    token = excluded.token, path = excluded.path, claimed = excluded.claimed,
    expires = excluded.expires, previous = c.run
WHERE c.expires < now()
RETURNING c.token, c.previous
"""
