"""review17b: a rescan asks the ledger for its pending after:s once (done17 asked once
per done file at each rescan: 5 000 done files, 5 000 more queries, on PostgreSQL a
round trip each), and a done file whose after: is pending still comes through."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from conftest import make_wav
from dropscribe.config import rules
from dropscribe.ingest import source
from dropscribe.intake import Intake
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.states import FileState, JobKey

if TYPE_CHECKING:
    from pathlib import Path


class Counting(SqliteLedger):
    """The SQLite ledger, counting the intake's questions about pending after:s."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: dict[str, int] = {"after_pending": 0, "afters_pending": 0}

    def after_pending(self, path: Path) -> Any:
        self.asked["after_pending"] += 1
        return super().after_pending(path)

    def afters_pending(self, limit: int = 1000) -> Any:
        self.asked["afters_pending"] += 1
        return super().afters_pending(limit)


def test_a_rescan_asks_for_pending_afters_once_not_once_a_done_file(setup: Any) -> None:
    """Forty done files, one with a pending after:: a scan asks the ledger once for the
    pending after:s, and only the file whose after: is pending comes through."""
    cfg = setup.load()
    (inbox,) = cfg.inboxes
    ledger = Counting(setup.state / "ledger.sqlite3")
    try:
        for i in range(40):
            path = make_wav(setup.inbox / f"f{i:02}.wav", seconds=0.1)
            settings = rules.effective(inbox, path)
            key = JobKey(f"{i:016x}", settings.shaping_hash())
            identity = source.identity(path.stat())
            ledger.record_file(path, inbox.name, identity, key.digest, key, FileState.DONE)
            ledger.file_done(path, list(settings.formats), [])
        ledger.after_failed(setup.inbox / "f07.wav", inbox.name, "move", "Permission denied")
        intake = Intake(lambda: cfg, ledger, clock=time.monotonic, wall=time.time)
        intake.scan(inbox)
        assert ledger.asked == {"after_pending": 0, "afters_pending": 1}
        assert intake.waiting() == (0, 1)  # f07.wav settling, the 39 others left alone
    finally:
        ledger.close()
