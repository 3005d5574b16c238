"""The real ``dropscribe`` process: private recordings stay private (sidecars, error
reports, the ledger, read as another user), and sidecars we wrote are known as ours
when the ledger is lost (adopted, never paid for again)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, Setup, make_wav
from fakeapi import Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import FakeAPI

pytestmark = pytest.mark.slow


@pytest.fixture
def open_setup(api: FakeAPI) -> Iterator[Setup]:
    """A Setup whose folders another user may reach (pytest's own are 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="dropscribe-private-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield Setup(root, api)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The daemon starts with the usual umask 022 (it inherits the test's)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def read_as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def denied(path: Path) -> bool:
    result = read_as_nobody(path)
    return result.returncode != 0 and "Permission denied" in result.stderr


@pytest.mark.usefixtures("umask_022")
def test_a_private_recording_gives_sidecars_and_a_ledger_nobody_else_reads(open_setup):
    """A 0600 recording under umask 022: no sidecar and no ledger file is readable by
    another user; a 0644 recording beside it still gives sidecars everyone reads."""
    setup = open_setup
    setup.data["defaults"]["formats"] = ["txt", "json", "srt"]
    make_wav(setup.inbox / "secret.wav").chmod(0o600)
    make_wav(setup.inbox / "public.wav", freq=300).chmod(0o644)
    setup.inbox.chmod(0o755)
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 0
    assert len(daemon.named("file.done")) == 2
    for ext in ("txt", "json", "srt"):
        secret = setup.inbox / f"secret.{ext}"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert denied(secret), secret
        public = setup.inbox / f"public.{ext}"
        assert stat.S_IMODE(public.stat().st_mode) == 0o644
        assert read_as_nobody(public).returncode == 0
    assert stat.S_IMODE(setup.state.stat().st_mode) == 0o700
    ledger_files = [p for p in setup.state.iterdir() if p.is_file()]
    assert any(p.name == "ledger.sqlite3" for p in ledger_files)
    for path in ledger_files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
        assert denied(path), path


@pytest.mark.usefixtures("umask_022")
def test_an_error_report_of_a_private_recording_is_private(open_setup):
    """A 0600 recording that fails for good: its .error.json is 0600 too."""
    setup = open_setup
    setup.api.script.append(Reply(400, {"error": {"message": "Invalid file format."}}))
    make_wav(setup.inbox / "secret.wav").chmod(0o600)
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 1
    report = setup.inbox / "failed" / "secret.wav.error.json"
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    assert denied(report)


@pytest.mark.usefixtures("umask_022")
def test_a_wider_state_dir_is_tightened_and_said(open_setup):
    """A state_dir an older dropscribe left 0755 with a 0644 ledger and lock is made
    0700 / 0600 at start, with state_dir.tightened naming what was wider."""
    setup = open_setup
    first = DaemonProcess(setup, command="once")
    assert first.wait() == 0
    setup.state.chmod(0o755)
    for name in ("ledger.sqlite3", "lock"):
        (setup.state / name).chmod(0o644)
    second = DaemonProcess(setup, command="once")
    assert second.wait() == 0
    [event] = second.named("state_dir.tightened")
    changed = {Path(c["path"]).name: (c["was"], c["now"]) for c in event["changed"]}
    assert changed[setup.state.name] == ("0755", "0700")
    assert changed["ledger.sqlite3"] == ("0644", "0600")
    assert changed["lock"] == ("0644", "0600")
    assert stat.S_IMODE(setup.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((setup.state / "ledger.sqlite3").stat().st_mode) == 0o600


def test_a_lost_ledger_adopts_our_sidecars_instead_of_paying_again(setup):
    """Transcribed, then the state_dir wiped: once and run adopt a.wav's marked sidecars
    (file.adopted): no upload, no a.wav.txt, the sidecars untouched."""
    setup.data["defaults"]["formats"] = ["txt", "json"]
    make_wav(setup.inbox / "a.wav")
    first = DaemonProcess(setup, command="once")
    assert first.wait() == 0
    assert len(setup.api.uploads) == 1
    before = {p.name: p.stat().st_ino for p in setup.inbox.iterdir()}
    shutil.rmtree(setup.state)
    again = DaemonProcess(setup, command="once")
    assert again.wait() == 0
    assert len(setup.api.uploads) == 1
    assert not (setup.inbox / "a.wav.txt").exists()
    [adopted] = again.named("file.adopted")
    assert sorted(Path(p).name for p in adopted["sidecars"]) == ["a.json", "a.txt"]
    assert not again.named("file.done")
    known = DaemonProcess(setup, command="once")  # the ledger has it again: not even looked at
    assert known.wait() == 0
    assert not known.named("file.detected")
    shutil.rmtree(setup.state)
    running = DaemonProcess(setup)
    try:
        running.wait_event("file.adopted")
    finally:
        running.kill()
    assert len(setup.api.uploads) == 1
    assert {p.name: p.stat().st_ino for p in setup.inbox.iterdir()} == before
    assert not (setup.inbox / "a.wav.txt").exists()


def test_a_strangers_sidecar_is_not_adopted(setup):
    """With an empty ledger, a hand-written b.txt beside b.wav, and c.txt carrying the
    mark of other content (a.wav's, copied), are strangers' files: both recordings are
    uploaded and their sidecars written beside them."""
    make_wav(setup.inbox / "a.wav")
    first = DaemonProcess(setup, command="once")
    assert first.wait() == 0
    shutil.rmtree(setup.state)
    make_wav(setup.inbox / "b.wav", freq=300)
    (setup.inbox / "b.txt").write_text("my own notes\n")
    make_wav(setup.inbox / "c.wav", freq=500)
    subprocess.run(
        ["cp", "--preserve=xattr", str(setup.inbox / "a.txt"), str(setup.inbox / "c.txt")],
        check=True,
    )
    assert os.getxattr(setup.inbox / "c.txt", "user.dropscribe")
    second = DaemonProcess(setup, command="once")
    assert second.wait() == 0
    assert [Path(e["path"]).name for e in second.named("file.adopted")] == ["a.wav"]
    assert len(setup.api.uploads) == 3
    assert (setup.inbox / "b.txt").read_text() == "my own notes\n"
    assert (setup.inbox / "b.wav.txt").read_text() == "transcript of b.wav\n"
    assert (setup.inbox / "c.wav.txt").read_text() == "transcript of c.wav\n"
