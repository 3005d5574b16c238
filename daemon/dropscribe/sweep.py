"""rows18: the ledger's small tables kept to what is true, at each full rescan (at start,
every ``rescan_seconds``, after a reload); a row per path for ever was what they grew by.

- ``waits`` (``ledger/waits.py``): a row goes once its file no longer waits (done,
  failed, its moment past) or is gone. One written in the last ``GRACE`` seconds stays:
  a job writes it just before its files row's moment.
- ``afters`` (``ledger/afters.py``): a row goes once its recording is gone from its
  folder (deleted or moved by hand, or by another host): ``file.after_dropped``. One
  whose recording no rescan looks at (its inbox taken out of the config, the file
  ignored now) stays, and is said once (``file.after_unreached``, a warning), as
  ``status`` and ``explain`` say it: put the inbox back, or move the recording by hand.

Cheap: the pending afters the scan reads anyway (the oldest ``AFTERS``), one query for the
waits, one statement per table with rows to delete, and a stat per row; never a query
per file. A row whose folder is gone as well stays (a folder on its way, a disk not
mounted; but a share unmounted under an empty mount point looks like its recordings
deleted), and so does a shared ledger's row of an inbox this host does not map.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe import names
from dropscribe.config import rules
from dropscribe.errors import LedgerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.ledger.afters import AfterRow
    from dropscribe.ledger.interface import Waiting
    from dropscribe.vocab.config import Config

log = structlog.get_logger("dropscribe")

AFTERS = 1000  # review17b: pending after:s asked once a scan; more: each done file asks
GRACE = 60.0  # seconds a new wait's row is kept whatever its files row says


def remedy(path: str, inbox: str) -> str:
    """What a person does about a pending ``after:`` no rescan tries (``rules.unreached``)."""
    forgets = "the next rescan" if path.startswith("/") else f"a daemon with inbox {inbox}"
    return (
        f"put inbox {inbox} back in the config (or stop ignoring the file): tried again at"
        f" the next rescan; or move or delete the recording yourself: {forgets} forgets it"
    )


def gone(path: str) -> bool:
    """A recording the ledger names (as this host shows it) is no longer there, while
    its folder is; never for a path of an inbox this host does not map (``@name/...``)."""
    if not path.startswith("/"):
        return False
    ways = dict.fromkeys((path, names.untext(path)))  # one, unless a name is not UTF-8
    return all(map(_not_there, ways)) and any(map(_folder_there, ways))


def _not_there(path: str) -> bool:
    """Whether ``path`` is surely not there: no such name (ENOENT, ENOTDIR), or none that
    could be (ENAMETOOLONG: the ``\\xNN`` text of a name not UTF-8). review20: not
    ``os.path.lexists``, False for any error: a recording in a folder closed to the
    daemon (EACCES) was taken as gone, its pending ``after:`` and wait dropped."""
    try:
        os.lstat(path)
    except OSError as exc:
        return exc.errno in {errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG}
    except ValueError:  # a NUL in it: no file has that name
        return True
    return False


def _folder_there(path: str) -> bool:
    """Whether ``path``'s folder is there; False where that cannot be told. attack19:
    ``is_dir`` raises past ENOENT and ENOTDIR: ENAMETOOLONG for a folder named in 64
    bytes or more that are not UTF-8 (its ``\\xNN`` text is over 255), EACCES for one
    its owner closed; the main loop died of it at each rescan, and at each start."""
    try:
        return Path(path).parent.is_dir()
    except OSError:
        return False


class Sweep:
    """The intake's sweeper (the main loop's thread)."""

    def __init__(
        self, config: Callable[[], Config], ledger: Waiting | None, wall: Callable[[], float]
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._wall = wall
        self._said: set[tuple[str, str]] = set()  # (path, why) said as unreached

    def afters(self) -> list[AfterRow] | None:
        """The oldest ``AFTERS`` pending after:s (None: the ledger could not say)."""
        if self._ledger is None:
            return []
        try:
            return self._ledger.afters_pending(AFTERS)
        except LedgerError:
            return None

    def swept(self, afters: list[AfterRow] | None) -> None:
        """After a full rescan: the afters it read, then the waits."""
        if self._ledger is None:
            return
        try:
            if afters:
                self._afters(self._ledger, afters)
            self._waits(self._ledger)
        except LedgerError as exc:  # housekeeping: the next rescan sweeps
            log.warning("ledger.write_failed", error=str(exc), ledger=self._ledger.where)

    def _afters(self, ledger: Waiting, rows: list[AfterRow]) -> None:
        dropped = set(ledger.afters_dropped([row.path for row in rows if gone(row.path)]))
        config = self._config()
        for row in rows:
            if row.path in dropped:
                log.info(
                    "file.after_dropped",
                    path=row.path,
                    inbox=row.inbox,
                    was=row.action,
                    reason="gone from its folder",
                )
                continue
            why = rules.unreached(config, row.path, row.inbox)
            if why is not None and (row.path, why) not in self._said:
                self._said.add((row.path, why))
                log.warning(
                    "file.after_unreached",
                    path=row.path,
                    inbox=row.inbox,
                    after=row.action,
                    reason=why,
                    action=remedy(row.path, row.inbox),
                )

    def _waits(self, ledger: Waiting) -> None:
        now = self._wall()
        over = [
            row.path
            for row in ledger.waits_kept()
            if gone(row.path)
            or (row.updated < now - GRACE and (row.next_try is None or row.next_try <= now))
        ]
        if over and (dropped := ledger.waits_dropped(over, now)):
            log.info(
                "ledger.swept",
                table="waits",
                rows=len(dropped),
                reason="files done, failed, gone or no longer waiting",
            )


def paths(rows: list[AfterRow] | None) -> set[str] | None:
    """review17b: the pending after:s' paths (as the ledger keeps them) for a scan to
    look up; None (each done file asks) past ``AFTERS`` rows or when none were read."""
    return None if rows is None or len(rows) >= AFTERS else {row.path for row in rows}
