"""until16: the moment a waiting file is tried again is a fact in the ledger (the files
table's ``next_try``), not a phrase in its error: ``status`` reads it, and a restarted
daemon hints the file at that moment rather than sending it at once; SQLite and
PostgreSQL, through the real dropscribe process and fake API."""

from __future__ import annotations

import datetime as dt
import json
import signal
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import openai_error

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

# The shortest Retry-After that frees the worker (transcribe/backoff.SLEPT_IN_PLACE is 30 s):
# the restart test waits this long, no longer.
RETRY_AFTER = 31
LONG = 3600  # a pause no test waits for


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, setup: Any) -> Any:
    """The usual setup (one worker, rescans an hour apart), its ledger in SQLite or in
    the real PostgreSQL server."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    if request.param == "postgresql":
        secret = setup.root / "ledger.password"
        secret.write_text(pg.PASSWORD)
        url = request.getfixturevalue("pg_url")
        setup.data["ledger"] = {"url": url, "password_file": str(secret)}
    return setup


def moment(event: dict[str, Any], field: str = "timestamp") -> float:
    return dt.datetime.fromisoformat(event[field]).timestamp()


def asks_for_a_pause(setup: Any, seconds: int) -> None:
    """The fake API's next answer: a 429 whose Retry-After is ``seconds``."""
    setup.api.script.append(
        openai_error(
            429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": f"{seconds}"}
        )
    )


def status_of(setup: Any, path: Path) -> dict[str, Any]:
    """``dropscribe status --json``'s entry for ``path``."""
    found = setup.command("status", "--json")
    assert found.returncode == 0, found.stderr
    [shown] = [f for f in json.loads(found.stdout)["files"] if f["path"] == str(path)]
    return shown


def waited(setup: Any, path: Path) -> dict[str, Any]:
    """A daemon that sends ``path``, is asked to wait, and is stopped: its file.waiting."""
    proc = DaemonProcess(setup)
    try:
        proc.wait_event("file.waiting", timeout=30)
        [said] = proc.named("file.waiting")
        assert said["path"] == str(path)
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
    return said


def test_status_reads_the_moment_from_the_ledger(site):
    """A file asked to wait an hour by a stopped daemon: status --json gives its next_try
    (local time) and says it is sent again then; explain says so too."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    said = waited(site, held)
    assert moment(said, "until") == pytest.approx(moment(said) + LONG, abs=3)
    shown = status_of(site, held)
    assert shown["state"] == "waiting"
    assert shown["next_try"] == said["until"]
    assert shown["action"].startswith("nothing: ")
    assert shown["action"].endswith(f" at {said['until']}")
    explained = site.command("explain", str(held))
    assert f"    tried again at {said['until']}" in explained.stdout.splitlines()


def test_a_restarted_daemon_sends_a_waiting_file_at_its_moment_not_at_once(site):
    """A daemon is asked (429, Retry-After past the in-place limit) to wait and stops; the
    next one does not send the file as it starts (file.deferred, until the same moment)
    but at that moment, and it is done."""
    asks_for_a_pause(site, RETRY_AFTER)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    said = waited(site, held)
    asked = site.api.uploads[0].at
    proc = DaemonProcess(site)
    try:
        wait_for(lambda: proc.named("file.done"), timeout=RETRY_AFTER + 15, what="the file")
        [done] = proc.named("file.done")
        assert moment(done) >= moment(said, "until") - 0.5
        assert len(site.api.uploads) == 2
        assert site.api.uploads[1].at - asked >= RETRY_AFTER - 0.5
        [deferred] = proc.named("file.deferred")
        assert (deferred["path"], deferred["until"]) == (str(held), said["until"])
        assert moment(deferred) < moment(said, "until")  # said at the start, not at the end
        assert not proc.named("file.waiting")
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_a_reload_sends_a_waiting_file_at_once(site):
    """A file waits an hour in a restarted daemon (file.deferred); a reload (SIGHUP) takes
    it up at once, as before until16: what it waits for may have changed."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    waited(site, held)
    proc = DaemonProcess(site)
    try:
        proc.wait_event("file.deferred", timeout=30)
        assert len(site.api.uploads) == 1
        proc.signal(signal.SIGHUP)
        wait_for(lambda: proc.named("file.done"), timeout=30, what="the file, after the reload")
        assert len(site.api.uploads) == 2
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def test_a_restart_after_the_folder_settings_changed_sends_a_waiting_file_at_once(setup):
    """A file asked to wait an hour by a stopped daemon; its folder's settings change (a
    language set) before the next start: that daemon sends it at once (no file.deferred),
    with the new settings, and it is done."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    asks_for_a_pause(setup, LONG)
    held = make_wav(setup.inbox / "held.wav", seconds=0.5)
    waited(setup, held)
    setup.data["defaults"]["language"] = "en"
    proc = DaemonProcess(setup)
    try:
        wait_for(lambda: proc.named("file.done"), timeout=30, what="the file, at once")
        assert not proc.named("file.deferred")
        assert setup.api.uploads[-1].fields["language"] == "en"
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
