"""Budgets (issue 34, items 4 and 6), through the real daemon: a budget reached mid-batch
sends the rest of the files to the next endpoint with file.fallback (reason budget) and
one budget.reached; alone, the files over budget wait; with several worker processes on
one SQLite ledger and with two hosts on a shared PostgreSQL, the spend recorded never
exceeds the budget; status shows spend against budget."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI

if TYPE_CHECKING:
    from pathlib import Path

PRICE = 3600.0  # per audio hour: one unit of money a second, so 1 s files cost 1.00 each
COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}


def drop(folder: Path, count: int) -> list[Path]:
    """``count`` one-second recordings, each its own content (its own pitch)."""
    return [
        make_wav(folder / f"call-{n:02d}.wav", seconds=1.0, freq=300.0 + 20 * n)
        for n in range(count)
    ]


def status(config: Path, env: dict[str, str]) -> dict[str, Any]:
    """``dropscribe status --json``, as a user runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "status", "--json", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def spent(state: Path) -> float:
    """Every cost the SQLite ledger recorded (reserved or settled)."""
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        return float(db.execute("SELECT COALESCE(SUM(cost), 0) FROM spend").fetchone()[0])


def test_a_file_that_would_cross_an_endpoints_budget_goes_to_the_next(setup):
    """The first endpoint's day budget (2.50) takes two 1.00 files; the other three go to
    the second with file.fallback (reason budget), budget.reached is said once, and status
    shows 2.00 of 2.50 today for the first and 3.00 for the second."""
    with FakeAPI() as first, FakeAPI() as second:
        setup.data["endpoints"] = {
            "first": {
                "base_url": first.base_url,
                "price_per_hour": PRICE,
                "budget": {"per_day": 2.5, "per_month": 50},
                **COMMON,
            },
            "second": {"base_url": second.base_url, "price_per_hour": PRICE, **COMMON},
        }
        setup.data["defaults"].update(endpoint=["first", "second"], model="whisper-1")
        paths = drop(setup.inbox, 5)
        proc = DaemonProcess(setup, command="once")
        assert proc.wait(120) == 0
        assert all(p.with_suffix(".txt").exists() for p in paths)
        assert len(first.uploads) == 2
        assert len(second.uploads) == 3
        passed = proc.named("file.fallback")
        assert [e["reason"] for e in passed] == ["budget"] * 3
        assert all(e["endpoint"] == "first" and e["to"] == "second" for e in passed)
        (reached,) = proc.named("budget.reached")
        assert reached["level"] == "warning"
        assert (reached["scope"], reached["name"]) == ("endpoint", "first")
        found = status(setup.config_path, setup.env)["spend"]
        assert found["endpoints"]["first"] == {
            "today": 2.0,
            "month": 2.0,
            "per_day": 2.5,
            "per_month": 50.0,
        }
        assert found["endpoints"]["second"]["today"] == 3.0
        assert found["folders"][next(iter(found["folders"]))]["today"] == 5.0


def test_a_folders_budget_holds_across_worker_processes(setup):
    """Two worker processes, two workers each, ten 1.00 files and a folder budget of 3.50
    a day: exactly three are sent, the ledger records 3.00, and the rest stay in the
    inbox for when the period turns (once exits 3)."""
    setup.data["endpoints"]["local"]["price_per_hour"] = PRICE
    setup.data["defaults"]["budget"] = {"per_day": 3.5}
    setup.data.update(processes=2, workers=2)
    paths = drop(setup.inbox, 10)
    proc = DaemonProcess(setup, command="once")
    assert proc.wait(120) == 3
    assert len(setup.api.uploads) == 3
    assert spent(setup.state) == pytest.approx(3.0)
    assert sum(p.with_suffix(".txt").exists() for p in paths) == 3
    assert all(p.exists() for p in paths)


def test_alone_over_budget_a_file_waits_and_the_metric_shows_the_spend(setup):
    """One endpoint, a day budget of 2.50, three 1.00 files in a running daemon: two are
    transcribed, budget.reached is said, the third waits unsent, and /metrics gives
    dropscribe_spend_total{endpoint,folder} 2.0."""
    setup.data["endpoints"]["local"].update(price_per_hour=PRICE, budget={"per_day": 2.5})
    setup.data["metrics"] = {"port": 0}
    paths = drop(setup.inbox, 3)
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("budget.reached", timeout=60)
        wait_for(lambda: sum(p.with_suffix(".txt").exists() for p in paths) == 2, what="two")
        (reached,) = proc.named("budget.reached")
        assert (reached["scope"], reached["name"]) == ("endpoint", "local")
        assert len(setup.api.uploads) == 2
        url = proc.named("metrics.listening")[0]["url"]
        text = httpx.get(url, timeout=10).text
        (line,) = [x for x in text.splitlines() if x.startswith("dropscribe_spend_total{")]
        assert 'endpoint="local"' in line
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(2.0)
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_when_every_endpoint_of_the_list_is_over_budget_the_file_stays(setup):
    """Two endpoints with a day budget of 1.50 each, four 1.00 files, `once`: each endpoint
    takes one, the other two stay in the inbox unsent, and once exits 3."""
    with FakeAPI() as first, FakeAPI() as second:
        budget = {"price_per_hour": PRICE, "budget": {"per_day": 1.5}, **COMMON}
        setup.data["endpoints"] = {
            "first": {"base_url": first.base_url, **budget},
            "second": {"base_url": second.base_url, **budget},
        }
        setup.data["defaults"].update(endpoint=["first", "second"], model="whisper-1")
        paths = drop(setup.inbox, 4)
        proc = DaemonProcess(setup, command="once")
        assert proc.wait(120) == 3
        assert (len(first.uploads), len(second.uploads)) == (1, 1)
        assert sum(p.with_suffix(".txt").exists() for p in paths) == 2
        assert all(p.exists() for p in paths)
        reached = {e["name"] for e in proc.named("budget.reached")}
        assert reached == {"first", "second"}
