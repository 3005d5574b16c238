"""The real ``dropscribe`` process under attack: faults of ours, swapped files, hostile
servers, leaked secrets. Each test attacks one promise of the README's reliability
section and would have broken it before that promise was kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, tmpfs
from fakeapi import FakeAPI, Reply
from test_attacks_ledgerfix import fill

pytestmark = pytest.mark.slow


def injected(setup, code: str) -> dict[str, str]:
    """Environment that runs ``code`` in the daemon's interpreter before dropscribe starts
    (a ``sitecustomize`` module): a bug of ours, put where a test wants it."""
    folder = setup.root / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


PROBE_CRASHES = """
from dropscribe.audio import probe

def crash(path):
    raise RuntimeError("injected fault")

probe.examine = crash
"""


def test_a_crashing_job_counts_its_attempts_then_is_quarantined(setup):
    """An exception nobody foresaw is a counted attempt (once exits 1), and at
    max_attempts the file is quarantined with an 'internal error' reason."""
    setup.data["endpoints"]["local"]["max_attempts"] = 2
    make_wav(setup.inbox / "a.wav")
    env = injected(setup, PROBE_CRASHES)
    first = DaemonProcess(setup, command="once", env=env)
    assert first.wait() == 1
    assert first.named("job.crashed")
    assert first.named("file.failed")[0]["will_retry"] is True
    assert (setup.inbox / "a.wav").exists()
    second = DaemonProcess(setup, command="once", env=env)
    assert second.wait() == 1
    report = json.loads((setup.inbox / "failed" / "a.wav.error.json").read_text())
    assert report["reason"] == "internal error: RuntimeError: injected fault"
    assert report["attempts"] == 2
    assert not setup.api.uploads
    third = DaemonProcess(setup, command="once", env=env)  # quarantined: left alone
    assert third.wait() == 0


ANSWER_CRASHES_ONCE = """
from dropscribe.transcribe import http

answer = http.Client._answer
crashed = []

def crash_once(self, response, *args):
    if response.status_code == 200 and not crashed:
        crashed.append(True)
        raise RuntimeError("injected fault")
    return answer(self, response, *args)

http.Client._answer = crash_once
"""


def test_a_probe_upload_that_crashes_leaves_the_endpoint_usable(setup):
    """The upload that probes a paused endpoint crashes: the endpoint is probed again by
    the next file instead of staying paused until a restart."""
    endpoint = setup.data["endpoints"]["local"]
    endpoint.update(pause_after_failures=1, pause_seconds=0.2)
    setup.api.script.append(Reply(503, {"error": {"message": "overloaded"}}))
    daemon = DaemonProcess(setup, env=injected(setup, ANSWER_CRASHES_ONCE))
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("endpoint.paused")
        daemon.wait_event("job.crashed")
        make_wav(setup.inbox / "b.wav", freq=300)
        daemon.wait_event("file.done")
    finally:
        daemon.kill()
    assert daemon.named("file.done")[0]["path"].endswith("b.wav")
    assert (setup.inbox / "b.txt").read_text() == "transcript of b.wav\n"


def during_an_upload(setup, change, *waits: str) -> DaemonProcess:
    """The real daemon, its first upload held at the server while ``change()`` acts on
    the inbox, then answered; returns once each event of ``waits`` has been logged."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        setup.api.hold()
        assert setup.api.wait_waiting(1, timeout=20)
        change()
        setup.api.release()
        for name in waits:
            daemon.wait_event(name)
    finally:
        daemon.kill()
    return daemon


def by_content(upload) -> dict[str, str]:
    """The fake server's answer names the content it was sent, not the file name."""
    return {"text": f"content {upload.sha256[:12]}"}


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:12]


def test_a_file_replaced_during_its_upload_is_neither_deleted_nor_mislabelled(setup):
    """after: delete, and another recording renamed over the name while the first is
    uploading: the newcomer is transcribed under that name, then deleted; the first's
    transcript is kept, never written beside the newcomer."""
    setup.data["defaults"]["after"] = "delete"
    setup.api.answer = by_content
    first = make_wav(setup.inbox / "a.wav")
    first_bytes = first.read_bytes()
    second_bytes = make_wav(setup.root / "b.wav", freq=300).read_bytes()
    daemon = during_an_upload(
        setup,
        lambda: os.replace(setup.root / "b.wav", setup.inbox / "a.wav"),
        "file.changed",
        "file.done",
    )
    assert daemon.named("file.changed")[0]["reason"] == (
        "renamed or replaced while it was being transcribed"
    )
    assert (setup.inbox / "a.txt").read_text() == f"content {sha(second_bytes)}\n"
    assert not (setup.inbox / "a.wav").exists()
    assert [u.sha256[:12] for u in setup.api.uploads] == [sha(first_bytes), sha(second_bytes)]


def test_a_file_appended_to_during_its_upload_is_transcribed_again_whole(setup):
    """after: delete, and more audio appended while the upload runs: the partial
    transcript is not written, the file is not deleted; it settles again and the whole
    content is transcribed, then deleted."""
    setup.data["defaults"]["after"] = "delete"
    setup.api.answer = by_content
    path = make_wav(setup.inbox / "a.wav")

    whole = path.read_bytes() + b"\0" * 3200

    def append() -> None:
        with path.open("ab") as fh:
            fh.write(b"\0" * 3200)

    daemon = during_an_upload(setup, append, "file.done")
    assert daemon.named("file.changed")[0]["reason"] == (
        "written to while it was being transcribed"
    )
    assert (setup.inbox / "a.txt").read_text() == f"content {sha(whole)}\n"
    assert not path.exists()
    assert len(setup.api.uploads) == 2


@pytest.mark.parametrize("after", ["move", "delete"])
def test_a_reused_recording_name_keeps_every_transcript(setup, after):
    """A recorder that names every file REC001.WAV, with after: move or delete: each
    recording keeps its own transcript; none overwrites another's only copy."""
    setup.data["defaults"]["after"] = after
    setup.api.answer = by_content
    daemon = DaemonProcess(setup)
    contents = []
    try:
        daemon.wait_event("daemon.started")
        for n in range(3):
            recording = make_wav(setup.root / "card" / "REC001.WAV", freq=200 + 100 * n)
            contents.append(sha(recording.read_bytes()))
            os.replace(recording, setup.inbox / "REC001.WAV")
            daemon.wait_event("file.done", count=n + 1)
    finally:
        daemon.kill()
    texts = sorted(p.read_text() for p in setup.inbox.glob("REC001*.txt"))
    assert texts == sorted(f"content {c}\n" for c in contents)
    if after == "move":
        moved = sorted(p.name for p in (setup.inbox / "done").iterdir())
        assert moved == ["REC001 (2).WAV", "REC001 (3).WAV", "REC001.WAV"]


def free_port() -> int:
    """A port on 127.0.0.1 where nothing listens (yet)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_outage_never_uses_up_a_files_attempts(setup):
    """The endpoint's server is down for longer than max_attempts and the breaker's
    threshold: the file waits, the error names the URL and the reason, and once the
    server is up the file is transcribed (before, it was quarantined)."""
    port = free_port()
    endpoint = setup.data["endpoints"]["local"]
    endpoint.update(
        base_url=f"http://127.0.0.1:{port}/v1",
        max_attempts=2,
        pause_after_failures=3,
        pause_seconds=0.2,
        backoff_max=0.05,
    )
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("upload.failed", count=6)
        with FakeAPI(api_key=API_KEY, port=port) as server:
            daemon.wait_event("file.done")
    finally:
        daemon.kill()
    failed = daemon.named("upload.failed")
    assert failed[0]["error"] == f"cannot connect to http://127.0.0.1:{port}/v1: connection refused"
    assert {e["attempt"] for e in failed} == {1}
    assert daemon.named("endpoint.paused")
    assert len(server.uploads) == 1
    assert not (setup.inbox / "failed").exists()
    assert (setup.inbox / "a.txt").exists()


def test_once_with_a_bad_key_fails_every_file_at_once(setup):
    """once, and the endpoint refuses the key: one request is made, every file fails
    with that reason (not quarantined) and the command exits 1 without waiting out a
    pause per file."""
    for n in range(4):
        make_wav(setup.inbox / f"f{n}.wav", freq=200 + 50 * n)
    daemon = DaemonProcess(setup, command="once", env={"DROPSCRIBE_TEST_KEY": "sk-wrong"})
    assert daemon.wait(timeout=20) == 1
    failed = daemon.named("file.failed")
    assert len(failed) == 4
    assert {e["quarantined"] for e in failed} == {False}
    assert all(e["error"].startswith("HTTP 401: Incorrect API key provided") for e in failed)
    assert len(setup.api.uploads) == 1
    assert not (setup.inbox / "failed").exists()


def test_the_api_key_appears_nowhere_but_in_the_request(setup):
    """A server that echoes the key (across the message's cut) and a hook that prints
    it and dumps its environment: the key is in no log line, .error.json, metrics,
    status or explain output, hook environment, nor the daemon's command line."""

    import httpx

    leak = setup.root / "leak.txt"
    leak.write_text(API_KEY)
    hook_env = setup.root / "hook-env.txt"
    script = f"env > {hook_env}; cat {leak} >&2; exit 3"
    setup.data["defaults"]["hook"] = {"command": ["sh", "-c", script]}
    setup.data["metrics"] = {"port": 0}
    message = "x" * 290 + f" the key {API_KEY} is not valid for this route"
    setup.api.script.append(Reply(400, {"error": {"message": message, "param": None}}))
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("hook.failed")
        url = daemon.named("metrics.listening")[0]["url"]
        metrics = httpx.get(url).text
        cmdline = Path(f"/proc/{daemon.proc.pid}/cmdline").read_bytes().decode()
    finally:
        daemon.kill()
    outputs = {
        "log": "".join(daemon.raw),
        "error.json": (setup.inbox / "failed" / "a.wav.error.json").read_text(),
        "metrics": metrics,
        "cmdline": cmdline,
        "hook env": hook_env.read_text(),
    }
    for command in (["status"], ["explain", str(setup.inbox / "failed" / "a.wav")]):
        done = run_command(setup, *command)
        outputs[command[0]] = done.stdout + done.stderr
    for where, text in outputs.items():
        assert API_KEY[:12] not in text, where
    assert daemon.named("hook.failed")[0]["stderr"] == "***"
    assert "DROPSCRIBE_TEST_KEY" not in outputs["hook env"]
    assert "DROPSCRIBE_OUTCOME=failed" in outputs["hook env"]


def run_command(setup, *args: str):
    """A dropscribe command (status, retry, explain) as a user runs it."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=60,
        check=False,
    )


def test_retry_puts_files_back_by_the_inbox_layout_not_by_a_planted_report(setup):
    """A planted recording in failed/ with a report whose source points outside the
    inbox: retry puts it back inside the inbox, never where the report says."""
    outside = setup.root / "outside"
    outside.mkdir()
    planted = make_wav(setup.inbox / "failed" / "sub" / "x.wav")
    report = {"reason": "planted", "source": str(outside / "x.wav"), "key": None}
    (planted.parent / "x.wav.error.json").write_text(json.dumps(report))
    done = run_command(setup, "retry", "--all")
    assert done.returncode == 0, done.stderr
    assert (setup.inbox / "sub" / "x.wav").exists()
    assert not list(outside.iterdir())


def test_a_failed_dir_that_is_a_link_out_of_the_inbox_receives_nothing(setup):
    """inbox/failed is a symbolic link to a folder elsewhere: a failing recording stays
    where it is, the refusal is an event that says why, and nothing lands outside."""
    outside = setup.root / "outside"
    outside.mkdir()
    (setup.inbox / "failed").symlink_to(outside)
    setup.api.script.append(Reply(400, {"error": {"message": "Invalid file format."}}))
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 1
    skipped = daemon.named("file.quarantine_skipped")
    assert "is a symbolic link" in skipped[0]["reason"]
    assert (setup.inbox / "a.wav").exists()
    assert not list(outside.iterdir())
    again = DaemonProcess(setup, command="once")  # failed in the ledger: not sent again
    assert again.wait() == 0
    assert len(setup.api.uploads) == 1


def test_status_escapes_terminal_control_characters_in_names_and_messages(setup):
    """A file name and a server message carrying escape sequences are printed by status
    with the control characters visible, not sent to the terminal."""
    evil = "\x1b]0;owned\x07\x1b[2J"
    setup.api.script.append(Reply(400, {"error": {"message": f"bad {evil} file"}}))
    make_wav(setup.inbox / f"{evil}.wav")
    assert DaemonProcess(setup, command="once").wait() == 1
    done = run_command(setup, "status")
    assert done.returncode == 0
    assert "\x1b" not in done.stdout
    assert "\x07" not in done.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2J.wav" in done.stdout


def test_a_deleted_state_dir_stops_the_daemon_within_seconds(setup):
    """state_dir removed under a running daemon: it stops with an error naming it (exit 1,
    so systemd restarts it), rather than go on beside a second daemon on a new ledger."""
    import shutil

    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        shutil.rmtree(setup.state)
        assert daemon.wait(timeout=20) == 1
    finally:
        daemon.kill()
    error = daemon.named("daemon.failed")[0]["error"]
    assert error.startswith(f"state_dir {setup.state} was deleted or replaced while running")


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB disk of our own."""
    with tmpfs(tmp_path / "small", "size=3m") as mount:
        yield mount


def test_a_full_state_dir_keeps_the_paid_transcript_and_never_uploads_twice(setup, small_disk):
    """The ledger's disk is full when a transcript comes back: it is kept, the failure is
    an event that says so, and once there is room the sidecars are written from it with
    no second upload."""
    setup.state = small_disk / "state"
    setup.data["state_dir"] = str(setup.state)
    setup.data["rescan_seconds"] = 1
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        filler = fill(small_disk)
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("ledger.write_failed")
        assert not (setup.inbox / "a.txt").exists()
        filler.unlink()
        daemon.wait_event("file.done")
    finally:
        daemon.kill()
    assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not (setup.inbox / "failed").exists()


def test_an_unwritable_inbox_fails_its_files_before_anything_is_sent(setup, small_disk):
    """An inbox the daemon cannot write sidecars into (here a read-only mount): each file
    fails with that reason before an upload is paid for, and is not quarantined."""
    import subprocess

    make_wav(small_disk / "a.wav")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    setup.data["inboxes"] = [{"path": str(small_disk)}]
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 1
    failed = daemon.named("file.failed")
    assert failed[0]["error"] == (
        f"cannot write sidecars into {small_disk} (this user may not, or it is read-only);"
        " nothing was sent"
    )
    assert not setup.api.uploads


def test_a_full_output_disk_keeps_the_transcript_and_writes_it_when_there_is_room(
    setup, small_disk
):
    """Sidecars that cannot be written for a full disk: the file is not done and not
    quarantined; once there is room they are written from the stored transcript."""
    setup.data["defaults"]["output_dir"] = str(small_disk / "out")
    setup.data["rescan_seconds"] = 1
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        filler = fill(small_disk)
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("sidecar.failed")
        filler.unlink()
        daemon.wait_event("file.done")
    finally:
        daemon.kill()
    assert (small_disk / "out" / "a.txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not (setup.inbox / "failed").exists()
