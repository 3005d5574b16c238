"""bounds17, through the real ``dropscribe`` process and fake API: a restarted daemon
does not honour a stored wait (the files row's ``next_try``, until16) that is further
ahead than dropscribe ever waits (year 5000, written by another writer), nor one whose
reason changed since it was written (the endpoint's budget raised); it sends the file
at once and says so (``file.wait_dropped`` with the path). An unchanged wait is still
honoured (``file.deferred``). SQLite and the real PostgreSQL."""

from __future__ import annotations

import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

import pg
from conftest import DaemonProcess, make_wav, wait_for
from test_attack16_next_try import site
from test_until16 import LONG, asks_for_a_pause, waited
from test_wake15 import zone_with_midnight_at

__all__ = ["site"]  # the fixture, used by name

YEAR_5000 = 95_617_584_000.0  # 5000-01-01 UTC: a moment the ledger takes (before 9999)


def far_ahead(site: Any) -> None:
    """Another writer sets every files row's next_try to the year 5000."""
    if site.backend == "sqlite":
        with closing(sqlite3.connect(site.state / "ledger.sqlite3")) as db, db:
            db.execute("UPDATE files SET next_try = ?", (YEAR_5000,))
        return
    with psycopg.connect(site.url, password=pg.PASSWORD) as db:
        db.execute("UPDATE files SET next_try = %s", (YEAR_5000,))


def sent_at_once(site: Any, held: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """A daemon that sends ``held`` as it starts (no file.deferred) and is done with it;
    its file.wait_dropped."""
    proc = DaemonProcess(site, env=env)
    try:
        wait_for(lambda: proc.named("file.done"), timeout=30, what="the file sent at once")
        assert [e["path"] for e in proc.named("file.done")] == [str(held)]
        assert not proc.named("file.deferred")
        [dropped] = proc.named("file.wait_dropped")
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert dropped["path"] == str(held)
    return dropped


def test_a_wait_further_ahead_than_dropscribe_ever_waits_is_not_honoured(site):
    """A waiting file's next_try overwritten with the year 5000 (a valid moment): the
    restarted daemon sends it at once, saying so with the path and why."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    waited(site, held)
    far_ahead(site)
    dropped = sent_at_once(site, held)
    assert dropped["until"].startswith("5000-01-01") or dropped["until"].startswith("4999-12-31")
    assert dropped["reason"] == "further ahead than dropscribe ever waits (32 days)"
    assert len(site.api.uploads) == 2


def test_a_budget_wait_is_kept_unless_the_budget_changed_before_the_restart(site):
    """An endpoint's day budget takes one of two files, the other waits for midnight
    (hours away) and the daemon stops. Restarted unchanged, it defers the file (sends
    nothing); restarted after the budget was raised in the YAML, it sends the file at
    once (file.wait_dropped naming the path) and is done."""
    endpoint = site.data["endpoints"]["local"]
    endpoint.update({"price_per_hour": 3600.0, "budget": {"per_day": 1.5}})  # 1 a second
    env = {"TZ": zone_with_midnight_at(time.time() + 12 * 3600)}  # midnight far off
    for name, freq in (("a", 440), ("b", 660)):
        make_wav(site.inbox / f"{name}.wav", 1.0, freq=freq)
    proc = DaemonProcess(site, env=env)
    try:
        proc.wait_event("file.done", timeout=30)
        proc.wait_event("file.waiting", timeout=30)
        [said] = proc.named("file.waiting")
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    held = said["path"]
    assert "endpoint local: per_day 1.50" in said["reason"]
    assert len(site.api.uploads) == 1

    proc = DaemonProcess(site, env=env)  # nothing changed: the wait holds
    try:
        proc.wait_event("file.deferred", timeout=30)
        [deferred] = proc.named("file.deferred")
        assert (deferred["path"], deferred["until"]) == (held, said["until"])
        assert not proc.named("file.wait_dropped")
        assert not proc.named("upload.started")
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert len(site.api.uploads) == 1

    endpoint["budget"] = {"per_day": 10.0}  # raised in the YAML, then a restart
    dropped = sent_at_once(site, Path(held), env)
    assert dropped["reason"].startswith("what it waited for changed since")
    assert len(site.api.uploads) == 2
