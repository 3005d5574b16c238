"""attack14: ``dropscribe search`` (and status, explain) under attack through the real
process: file names, transcript text and speaker labels holding escape codes, dates and
counts past what the ledger's integers hold, and the ledger's privacy while a search
reads it beside the running daemon (another user: ``runuser -u nobody``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, Setup, make_wav, wait_for
from fakeapi import Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import FakeAPI

pytestmark = pytest.mark.slow

EVIL = "\x1b]0;owned\x07\x1b[2J"  # sets the terminal's title, clears the screen


def command(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    """``dropscribe ARGS -c CONFIG``, as a person types it (not on a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=120,
        check=False,
    )


def hostile_answer() -> Reply:
    """A transcript whose text and speaker label carry escape codes."""
    text = f"hello {EVIL} northern bridge"
    segment = {"id": 0, "start": 0.0, "end": 0.5, "text": text, "speaker": f"{EVIL}Boss"}
    return Reply(200, {"text": text, "duration": 0.5, "segments": [segment]})


def test_escape_codes_in_names_text_and_speakers_never_reach_the_terminal(setup):
    """A recording named with escape codes, transcribed to text and a speaker label that
    hold them too: search (text and --json), status and explain print none of them."""
    setup.api.script.append(hostile_answer())
    recording = make_wav(setup.inbox / f"call{EVIL}.wav")
    assert DaemonProcess(setup, command="once").wait(60) == 0
    found = command(setup, "search", "northern")
    assert found.returncode == 0, found.stderr
    assert "northern" in found.stdout
    for result in (
        found,
        command(setup, "search", "--json", "northern"),
        command(setup, "search", "--speaker", "boss", "hello"),
        command(setup, "status"),
        command(setup, "explain", str(recording)),
    ):
        assert "\x1b" not in result.stdout + result.stderr
        assert "\x07" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--until", "9999-12-31"),
        ("--until", "9999-12-30"),
        ("--since", "9999-12-31T23:59:59"),
        ("--until", "0001-01-02"),
        ("-n", str(10**30)),
    ],
)
def test_dates_and_counts_past_the_ledgers_integers_are_no_traceback(setup, args):
    """A date past 2262 or before 1678 (nanoseconds past a 64-bit integer), the day after
    9999-12-31, or ``-n 10**30``: search answers (found, nothing or a bad query), never
    a Python traceback."""
    make_wav(setup.inbox / "call.wav")
    assert DaemonProcess(setup, command="once").wait(60) == 0
    result = command(setup, "search", *args, "transcript")
    assert "Traceback" not in result.stderr
    assert result.returncode in {0, 1, 2}, result.stderr
    if result.returncode == 2:
        assert result.stderr.startswith("dropscribe: search: "), result.stderr


@pytest.fixture
def open_setup(api: FakeAPI) -> Iterator[Setup]:
    """A Setup whose folders another user may reach (pytest's own are 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="dropscribe-attack14-", dir="/tmp"))
    root.chmod(0o755)
    old = os.umask(0o022)
    try:
        yield Setup(root, api)
    finally:
        os.umask(old)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_search_beside_the_daemon_leaves_no_transcript_another_user_reads(open_setup):
    """Under umask 022, a private (0600) recording is transcribed by the running daemon
    and searched for beside it: no file in the state_dir (the ledger, its -wal and -shm,
    which hold the transcript's text) can be read by another user."""
    setup = open_setup
    setup.inbox.chmod(0o755)
    secret = make_wav(setup.inbox / "secret.wav")
    secret.chmod(0o600)
    proc = DaemonProcess(setup)
    try:
        wait_for(lambda: secret.with_suffix(".txt").exists(), timeout=60, what="its transcript")
        assert command(setup, "search", "transcript").returncode == 0
        files = [p for p in setup.state.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-wal") for p in files)
        for path in files:
            read = subprocess.run(
                ["runuser", "-u", "nobody", "--", "cat", str(path)],
                capture_output=True,
                check=False,
            )
            assert read.returncode != 0, path
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(30)
