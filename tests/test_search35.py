"""``dropscribe search`` (issue 35) end to end: espeak-ng speech transcribed by the local
engine in the real daemon, then the real ``dropscribe search`` process, on a SQLite
ledger and on a real PostgreSQL one."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import DaemonProcess

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

BRIDGE = "Please note. The northern bridge is closed for repairs until Friday."
BUDGET = "Please note. The budget meeting moves to Thursday afternoon."
OLD = dt.datetime(2020, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp()  # the bridge recording's date


def speak(path: Path, text: str, mtime: float | None = None) -> Path:
    """Real speech by espeak-ng, moved into place whole (with ``mtime``, if given)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    staging = path.parent.parent / f".{path.name}.staging"
    subprocess.run(["espeak-ng", "-s", "140", "-w", str(staging), text], check=True)
    if mtime is not None:
        os.utime(staging, (mtime, mtime))
    staging.rename(path)
    return path


def search(config: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    """The real ``dropscribe search --json``: its exit code and its results."""
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "search", "-c", str(config), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in {0, 1}, done.stderr
    value = json.loads(done.stdout)
    assert value["version"] == 1
    return done.returncode, value["results"]


@pytest.fixture(params=["sqlite", "postgresql"])
def local(request: pytest.FixtureRequest, setup: Any) -> Any:
    """The local engine, two inboxes (inbox, archive), on either ledger."""
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}
    setup.data["log"] = {"format": "json", "level": "info"}
    archive = setup.root / "archive"
    archive.mkdir()
    setup.data["inboxes"] = [
        {"path": str(setup.inbox), "name": "inbox"},
        {"path": str(archive), "name": "archive"},
    ]
    setup.archive = archive
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        secret = setup.root / "ledger.password"
        secret.write_text(pg.PASSWORD)
        setup.data["ledger"] = {"url": url, "password_file": str(secret)}
    return setup


def test_search_finds_words_phrases_prefixes_by_filter_and_a_moved_file(local):
    """Two recordings transcribed by the daemon: search finds a phrase with its moment and
    its words marked, a prefix, honours -excluded, --inbox, --since/--until, --language
    and -n; once the recording is moved to the other inbox, it is found at its new place."""
    config = local.write()
    speak(local.inbox / "bridge.wav", BRIDGE, mtime=OLD)
    speak(local.archive / "budget.wav", BUDGET)
    daemon = DaemonProcess(local)
    try:
        daemon.wait_event("file.done", 2, timeout=300)

        code, found = search(config, '"northern bridge"')
        assert code == 0
        (hit,) = found
        assert hit["path"] == str(local.inbox / "bridge.wav")
        assert hit["exists"] is True
        assert hit["inbox"] == "inbox"
        assert hit["start"] is not None
        assert hit["start"] < 3
        assert hit["at"] == f"0:{int(hit['start']):02d}"
        marked = [hit["text"][a:b].lower() for a, b in hit["marks"]]
        assert marked == ["northern", "bridge"]
        assert hit["language"] == "en"

        assert [h["path"] for h in search(config, "north* FRIDAY")[1]] == [hit["path"]]
        assert search(config, "bridge -repairs") == (1, [])
        assert search(config, '"bridge northern"') == (1, [])

        budget = str(local.archive / "budget.wav")
        assert [h["path"] for h in search(config, "thursday", "--inbox", "archive")[1]] == [budget]
        assert search(config, "thursday", "--inbox", str(local.inbox)) == (1, [])
        assert [h["path"] for h in search(config, "note", "--until", "2021-01-01")[1]] == [
            hit["path"]
        ]
        assert [h["path"] for h in search(config, "note", "--since", "2021-01-01")[1]] == [budget]
        assert len(search(config, "note", "--language", "english")[1]) == 2
        assert search(config, "note", "--language", "de") == (1, [])
        assert len(search(config, "note", "-n", "1")[1]) == 1

        moved = local.archive / "bridge-moved.wav"
        (local.inbox / "bridge.wav").rename(moved)
        daemon.wait_output(
            lambda: any(e.get("path") == str(moved) for e in daemon.named("file.done")),
            120,
            "the moved recording done",
        )
        (again,) = search(config, '"northern bridge"')[1]
        assert again["path"] == str(moved)
        assert again["exists"] is True
        assert again["inbox"] == "archive"
        assert str(local.inbox / "bridge.wav") in again["paths"]
    finally:
        daemon.signal(15)
        assert daemon.wait() == 0
