"""Steps after the transcript (issue 33), the second half: step sidecars owned as the
transcript's are, private as their recording, through the real dropscribe process, the
fake transcription API and the fake chat server."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, Setup, make_wav
from fakechat import FakeChat

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import FakeAPI

KEY = "llm-key-0123"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key=KEY) as server:
        yield server


def with_steps(setup: Setup, chat: FakeChat, **more: Any) -> None:
    setup.data["endpoints"]["llm"] = {
        "kind": "chat",
        "base_url": chat.base_url,
        "api_key_env": "LLM_KEY",
        "max_attempts": 2,
        "backoff_max": 0.2,
        "timeout": 10,
    }
    setup.data["defaults"].update(
        {
            "formats": ["txt", "srt", "md"],
            "chat": {"endpoint": "llm", "model": "some-model"},
            "summary": True,
            "translate_to": ["de"],
            **more,
        }
    )


def test_a_users_own_summary_and_translation_files_are_left_alone(setup, chat):
    """A user's own meeting.summary.md and meeting.de.srt beside the recording are never
    overwritten: the step sidecars take meeting.wav.summary.md and meeting.wav.de.srt (the
    transcript's fallback names), claimed in the ledger, with sidecar.renamed said."""
    with_steps(setup, chat)
    mine = {"meeting.summary.md": b"my own notes\n", "meeting.de.srt": b"my own subtitles\n"}
    for name, data in mine.items():
        (setup.inbox / name).write_bytes(data)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "meeting.wav")
        daemon.wait_event("step.written", 2, timeout=30)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    for name, data in mine.items():
        assert (setup.inbox / name).read_bytes() == data, name
    assert (setup.inbox / "meeting.wav.summary.md").read_text().startswith("# Meeting")
    assert "de: " in (setup.inbox / "meeting.wav.de.srt").read_text()
    renamed = {
        Path(e["wanted"]).name: Path(e["sidecar"]).name for e in daemon.named("sidecar.renamed")
    }
    assert renamed == {
        "meeting.summary.md": "meeting.wav.summary.md",
        "meeting.de.srt": "meeting.wav.de.srt",
    }
    written = {Path(p).name for e in daemon.named("step.written") for p in e["sidecars"]}
    assert {"meeting.wav.summary.md", "meeting.wav.de.srt", "meeting.md"} <= written


@pytest.fixture
def open_setup(api: FakeAPI) -> Iterator[Setup]:
    """A Setup whose folders another user may reach (pytest's own are 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="dropscribe-steps-", dir="/tmp"))
    root.chmod(0o755)
    old = os.umask(0o022)
    try:
        yield Setup(root, api)
    finally:
        os.umask(old)
        shutil.rmtree(root, ignore_errors=True)


def read_as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_step_sidecars_of_a_private_recording_are_private(open_setup, chat):
    """Under umask 022 a 0600 recording's summary and translation are 0600 and another
    user cannot read them; a 0644 recording's are 0644 and readable."""
    setup = open_setup
    with_steps(setup, chat)
    setup.inbox.chmod(0o755)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "secret.wav").chmod(0o600)
        make_wav(setup.inbox / "public.wav", freq=300).chmod(0o644)
        daemon.wait_event("step.written", 4, timeout=40)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    for name in ("summary.md", "de.srt", "de.txt", "md"):
        secret, public = setup.inbox / f"secret.{name}", setup.inbox / f"public.{name}"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
        denied = read_as_nobody(secret)
        assert denied.returncode != 0, secret
        assert "Permission denied" in denied.stderr
        assert stat.S_IMODE(public.stat().st_mode) == 0o644, public
        assert read_as_nobody(public).returncode == 0, public
