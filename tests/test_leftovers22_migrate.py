"""leftovers22: ``dropscribe ledger migrate`` copied files, jobs, steps, hooks owed and
pending ``after:`` actions, but not ``spend``, ``sends``, ``heard`` nor ``waits``: after
a move to PostgreSQL a folder's monthly budget started again from zero (and what was
heard, and what a wait was for, were forgotten). All four are copied now, paths made
portable. Real daemons (SQLite, then PostgreSQL), the real command."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from test_budget34 import PRICE, drop, status
from test_leftovers21_migrate import moved_to_postgres, shared

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow

KEPT = ("spend", "sends", "heard", "waits")
DIGEST = "d" * 64  # a content's digest, as language detection keys what it heard
HEARD = [("fr", 0.875), ("en", 0.125)]


def counts(setup: Setup) -> dict[str, int]:
    """Rows of each KEPT table in the SQLite ledger."""
    import sqlite3

    with sqlite3.connect(setup.state / "ledger.sqlite3") as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in KEPT}


def test_a_folders_budget_goes_on_from_its_spend_after_ledger_migrate(
    setup: Setup, pg_url: str
) -> None:
    """Three 1.00 files and a folder budget of 2.50 a month on SQLite (endpoints local,
    other): two sent, one waits. ledger migrate copies every spend, sends, heard and waits row (paths as
    @inbox/...); on PostgreSQL a new 1.00 file is not sent (2.00 spent already), status
    shows 2.00 this month, what was heard reads back, and a second migrate copies none."""
    from dropscribe.ledger.opening import open_ledger
    from dropscribe.ledger.store import SqliteLedger

    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.data["endpoints"]["other"] = dict(setup.data["endpoints"]["local"])
    setup.data["defaults"].update(endpoint=["local", "other"], budget={"per_month": 2.5})
    paths = drop(setup.inbox, 3)
    first = DaemonProcess(setup)
    try:
        first.wait_event("file.done", count=2, timeout=60)
        wait_for(lambda: counts(setup)["waits"] == 1, 60, "the third file's wait kept")
    finally:
        first.signal(signal.SIGTERM)
        first.wait(30)
    assert len(setup.api.uploads) == 2
    waiting = [p.name for p in paths if not p.with_suffix(".txt").exists()]
    assert len(waiting) == 1
    # what a detector heard, kept by the ledger's own write (no detector model here)
    ledger = SqliteLedger(setup.state / "ledger.sqlite3")
    try:
        ledger.record_heard(DIGEST, 1, "tiny/whole", HEARD)
    finally:
        ledger.close()
    before = counts(setup)
    assert (before["spend"], before["heard"], before["waits"]) == (2, 1, 1), before
    assert before["sends"] >= 2, before  # each file sent to local, the third passed over
    shown = moved_to_postgres(setup, pg_url)
    for table, count in before.items():
        assert f"{table}: {count} copied\n" in shown, shown
    assert shared(pg_url, "SELECT path FROM waits") == [(f"@inbox/{waiting[0]}",)]
    assert {p for (p,) in shared(pg_url, "SELECT path FROM spend")} == {
        f"@inbox/{p.name}" for p in paths if p.name not in waiting
    }
    assert shared(pg_url, "SELECT sum(cost) FROM spend") == [(pytest.approx(2.0),)]
    make_wav(setup.inbox / "new.wav", seconds=1.0, freq=900.0)
    second = DaemonProcess(setup, command="once")
    assert second.wait(120) == 3, second
    assert len(setup.api.uploads) == 2  # the budget went on from 2.00: nothing sent
    assert not (setup.inbox / "new.txt").exists()
    folders = status(setup.config_path, setup.env)["spend"]["folders"]
    assert [f["month"] for f in folders.values()] == [pytest.approx(2.0)], folders
    again = open_ledger(setup.load(), daemon=False, pool_size=1)
    try:
        assert again.heard(DIGEST, 1, "tiny/whole") == HEARD
    finally:
        again.close()
    shown = moved_to_postgres(setup, pg_url)
    for table in KEPT:
        assert f"{table}: 0 copied\n" in shown, shown
