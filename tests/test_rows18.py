"""rows18: the ledger's small tables do not grow for ever. A full rescan (``Intake.scan_all``,
the intake on the real ledger, SQLite and the real PostgreSQL) drops the ``afters`` row of
a recording gone from its folder (``file.after_dropped``) and the ``waits`` rows of files
done or gone, keeping those still waiting, a wait just written, and a row whose folder
is gone too; the ledger deletes a batch of paths in one statement each ``BATCH``."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import make_wav, named
from dropscribe.config import rules
from dropscribe.intake import Intake
from dropscribe.ledger.afters import BATCH
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.store import SqliteLedger
from dropscribe.sweep import GRACE
from dropscribe.vocab.config import SharedLedger
from dropscribe.vocab.states import FileState, JobKey

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dropscribe.vocab.config import Config

NO_SPACE = "No space left on device"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, setup: Any) -> Iterator[Any]:
    """The setup's ledger: SQLite in its state_dir, or the real PostgreSQL server (its
    paths kept relative to the inbox, as hosts sharing it keep them)."""
    if request.param == "sqlite":
        made: Any = SqliteLedger(setup.state / "ledger.sqlite3")
    else:
        shared = SharedLedger(request.getfixturevalue("pg_url"), pg.PASSWORD, "a", 30.0)
        made = PostgresLedger(shared, Places([("inbox", setup.inbox)]))
    try:
        yield made
    finally:
        made.close()


def rescan(cfg: Config, ledger: Any, ahead: float = 0.0) -> None:
    """One full rescan by an intake whose wall clock is ``ahead`` seconds ahead."""
    intake = Intake(lambda: cfg, ledger, clock=time.monotonic, wall=lambda: time.time() + ahead)
    intake.scan_all()


def recorded(
    ledger: Any, cfg: Config, path: Path, state: FileState, next_try: float | None
) -> None:
    """A files row for ``path`` in ``state`` (waiting until ``next_try``)."""
    (inbox,) = cfg.inboxes
    st = path.stat()
    key = JobKey(f"{st.st_ino:016x}", "s" * 16)
    ledger.record_file(
        path,
        inbox.name,
        (st.st_size, st.st_mtime_ns, st.st_ino),
        key.digest,
        key,
        state,
        "waiting: budget",
        next_try,
    )


def test_a_rescan_drops_the_pending_after_of_a_recording_deleted_by_hand(
    setup: Any, ledger: Any, events: list[dict[str, Any]]
) -> None:
    """Three done files' move pending, one deleted by hand: its row goes (said); the others'
    stay, one of a name that is not UTF-8 (the ledger keeps it as ``\\xNN`` text) among them."""
    cfg = setup.load()
    kept = make_wav(setup.inbox / "kept.wav", seconds=0.1)
    latin = make_wav(setup.inbox / os.fsdecode(b"caf\xe9.wav"), seconds=0.1)
    deleted = make_wav(setup.inbox / "deleted.wav", seconds=0.1)
    for path in (kept, latin, deleted):
        ledger.after_failed(path, "inbox", "move", NO_SPACE)
    deleted.unlink()
    rescan(cfg, ledger)
    left = {row.path for row in ledger.afters_pending()}
    assert left == {str(kept), str(setup.inbox / "caf\\xe9.wav")}
    [dropped] = named(events, "file.after_dropped")
    assert dropped["path"] == str(deleted)
    assert (dropped["was"], dropped["reason"]) == ("move", "gone from its folder")
    assert not named(events, "file.after_unreached")  # the kept one is tried at each rescan


def test_a_row_whose_folder_is_gone_too_is_kept(
    setup: Any, ledger: Any, events: list[dict[str, Any]]
) -> None:
    """A pending move in a subfolder that is gone as a whole (a disk not mounted) stays."""
    setup.data["inboxes"][0]["recursive"] = True
    cfg = setup.load()
    path = make_wav(setup.inbox / "card" / "a.wav", seconds=0.1)
    ledger.after_failed(path, "inbox", "move", NO_SPACE)
    ledger.record_wait(path, "0123456789abcdef")
    path.unlink()
    path.parent.rmdir()
    rescan(cfg, ledger, ahead=2 * GRACE)
    assert [row.path for row in ledger.afters_pending()] == [str(path)]
    assert not named(events, "file.after_dropped")


def test_a_rescan_drops_the_waits_of_files_done_or_gone_not_of_those_waiting(
    setup: Any, ledger: Any, events: list[dict[str, Any]]
) -> None:
    """Three waits: a file still waiting keeps its row; one done keeps it for GRACE, then
    not; one deleted by hand while it waits loses it at once."""
    cfg = setup.load()
    waiting, done, deleted = (
        make_wav(setup.inbox / f"{name}.wav", seconds=0.1, freq=freq)
        for name, freq in (("waiting", 440), ("done", 550), ("deleted", 660))
    )
    ahead = time.time() + 3600
    recorded(ledger, cfg, waiting, FileState.ERROR, ahead)
    recorded(ledger, cfg, done, FileState.DONE, None)
    recorded(ledger, cfg, deleted, FileState.ERROR, ahead)
    for path in (waiting, done, deleted):
        ledger.record_wait(path, "0123456789abcdef")
    deleted.unlink()
    rescan(cfg, ledger)
    assert {row.path for row in ledger.waits_kept()} == {str(waiting), str(done)}
    rescan(cfg, ledger, ahead=2 * GRACE)  # the done file's row is older than GRACE now
    assert [row.path for row in ledger.waits_kept()] == [str(waiting)]
    assert ledger.waited_for(waiting) == "0123456789abcdef"
    assert [e["rows"] for e in named(events, "ledger.swept")] == [1, 1]


def test_the_ledger_drops_rows_a_batch_at_a_time_and_names_those_it_found(
    setup: Any, ledger: Any
) -> None:
    """More paths than a batch: every row goes; a path with no row is not named; a wait
    written after ``before`` stays."""
    paths = [setup.inbox / f"f{i:04}.wav" for i in range(BATCH + 20)]
    for path in paths:
        ledger.after_failed(path, "inbox", "delete", "Permission denied")
    asked = [str(path) for path in paths] + [str(setup.inbox / "none.wav")]
    assert sorted(ledger.afters_dropped(asked)) == sorted(str(path) for path in paths)
    assert ledger.afters_pending() == []
    assert ledger.afters_dropped([]) == []
    ledger.record_wait(paths[0], "0123456789abcdef")
    assert ledger.waits_dropped([str(paths[0])], time.time() - 30) == []
    assert ledger.waits_dropped([str(paths[0])], time.time() + 1) == [str(paths[0])]
    assert ledger.waits_kept() == []


def test_why_a_pending_after_is_never_tried_is_said_for_each_way(setup: Any) -> None:
    """unreached: None in the inbox; ignored now; its inbox's path changed; its inbox gone."""
    cfg = setup.load()
    inside, hidden = str(setup.inbox / "a.wav"), str(setup.inbox / ".a.wav")
    elsewhere = str(setup.root / "moved" / "a.wav")
    assert rules.unreached(cfg, inside, "inbox") is None
    assert rules.unreached(cfg, hidden, "inbox") == "ignored now in inbox inbox (hidden)"
    assert (
        rules.unreached(cfg, elsewhere, "inbox")
        == "no longer inside inbox inbox (its path: changed)"
    )
    assert rules.unreached(cfg, elsewhere, "old") == "inbox old is no longer in the config"
    assert rules.unreached(cfg, "@old/a.wav", "old") == "inbox old is not in this config"
