"""The daemon as users run it: the real process, real signals, sidecars checked on disk."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from conftest import API_KEY, DaemonProcess, make_wav
from fakeapi import openai_error

pytestmark = pytest.mark.slow


def leftovers(folder):
    """Temporary or partial files anywhere under a folder."""
    return [p for p in folder.rglob("*") if p.name.endswith(".dropscribe-tmp")]


def test_sigterm_lets_in_flight_uploads_finish_then_exits_0(setup):
    """SIGTERM during uploads: uploads in flight complete, sidecars are whole, exit code 0."""
    setup.data["defaults"]["formats"] = ["txt", "srt"]
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        # The first request to a model goes alone, until the server has confirmed
        # what it carries; then uploads run side by side.
        make_wav(setup.inbox / "first.wav")
        daemon.wait_event("file.done")
        setup.api.hold()
        for n in range(3):
            make_wav(setup.inbox / f"f{n}.wav", freq=300 + n * 100)
        assert setup.api.wait_waiting(3, timeout=20)
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon.stopping")
        setup.api.release()
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    for n in range(3):
        assert (setup.inbox / f"f{n}.txt").read_text() == f"transcript of f{n}.wav\n"
        assert (setup.inbox / f"f{n}.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert not leftovers(setup.root)
    assert daemon.named("daemon.stopped")[0]["done"] == 4


def test_sigterm_past_the_grace_period_leaves_no_partial_sidecar(setup):
    """A stuck upload is abandoned after the grace period; a restart finishes the file."""
    setup.data["shutdown_grace"] = 0.5
    setup.api.hold()
    make_wav(setup.inbox / "stuck.wav")
    daemon = DaemonProcess(setup)
    try:
        assert setup.api.wait_waiting(1, timeout=20)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert daemon.named("daemon.abandoned")
    assert not (setup.inbox / "stuck.txt").exists()
    assert not leftovers(setup.root)
    setup.api.release()
    again = DaemonProcess(setup)
    try:
        again.wait_event("file.done")
        again.signal(signal.SIGINT)
        assert again.wait() == 0
    finally:
        again.kill()
    assert (setup.inbox / "stuck.txt").read_text() == "transcript of stuck.wav\n"


def test_sigkill_then_restart_transcribes_each_file_exactly_once(setup):
    """After kill -9 mid-batch, a restart completes the rest without redoing finished files."""
    for n in range(6):
        make_wav(setup.inbox / f"k{n}.wav", freq=200 + 50 * n)
    setup.data["workers"] = 2
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("file.done", 2)
        daemon.signal(signal.SIGKILL)
        daemon.wait()
    finally:
        daemon.kill()
    finished_before = {e["path"] for e in daemon.named("file.done")}
    again = DaemonProcess(setup)
    try:
        again.wait_event("daemon.started")  # signal handlers are in place from here on
        wait = lambda: all((setup.inbox / f"k{n}.txt").exists() for n in range(6))  # noqa: E731
        from conftest import wait_for

        wait_for(wait, what="all six sidecars")
        again.signal(signal.SIGTERM)
        assert again.wait() == 0
    finally:
        again.kill()
    redone = {e["path"] for e in again.named("upload.started")} & finished_before
    assert not redone
    assert not leftovers(setup.root)


def test_once_exits_1_when_a_file_failed_and_logs_json(setup):
    """once: a permanent failure gives exit code 1, events are JSON lines without the key."""
    setup.api.script.append(openai_error(400, "Invalid file format."))
    make_wav(setup.inbox / "bad.wav")
    daemon = DaemonProcess(setup, command="once")
    try:
        assert daemon.wait() == 1
    finally:
        daemon.kill()
    failed = daemon.named("file.failed")
    assert failed[0]["error"] == "HTTP 400: Invalid file format."
    assert failed[0]["path"].endswith("bad.wav")
    assert all(e["event"] != "<unparsed>" for e in daemon.events)
    assert API_KEY not in "".join(daemon.raw)


def test_missing_inbox_is_one_line_and_exit_2(setup):
    """A config naming a folder that does not exist: one clear line, exit 2, no traceback."""
    setup.data["inboxes"][0]["path"] = str(setup.root / "gone")
    daemon = DaemonProcess(setup)
    assert daemon.wait() == 2
    assert len(daemon.raw) == 1
    assert "gone does not exist" in daemon.raw[0]
    assert json.dumps(daemon.raw).count("Traceback") == 0


def test_start_up_problems_name_what_is_wrong_and_exit_2(setup):
    """A metrics port already taken and a state_dir that is a file each give one line
    naming that thing and why, exit 2, no traceback."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        setup.data["metrics"] = {"port": port}
        daemon = DaemonProcess(setup)
        assert daemon.wait() == 2
        expected = (
            f"dropscribe: cannot serve metrics on 127.0.0.1:{port}: Address already"
            " in use (metrics: in the config)\n"
        )
        assert daemon.raw == [expected]
    finally:
        taken.close()
    del setup.data["metrics"]
    setup.data["state_dir"] = str(setup.root / "a-file")
    (setup.root / "a-file").write_text("not a folder")
    daemon = DaemonProcess(setup)
    assert daemon.wait() == 2
    assert len(daemon.raw) == 1
    assert daemon.raw[0].startswith(f"dropscribe: cannot use state_dir {setup.root / 'a-file'}:")


@pytest.mark.parametrize("processes", [1, 2])
def test_sighup_reloads_config_and_rejects_a_broken_one(setup, processes):
    """SIGHUP applies a new inbox, model and endpoint timeout (in worker processes too);
    settings that need a restart are kept and named; a broken config is refused and
    the old one stays."""
    import yaml

    setup.data["processes"] = processes
    second = setup.root / "second"
    second.mkdir()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "before.wav")
        daemon.wait_event("file.done")
        setup.data["inboxes"].append({"path": str(second), "model": "gpt-4o-transcribe"})
        setup.data["defaults"]["model"] = "gpt-4o-mini-transcribe"
        setup.data["endpoints"]["local"]["timeout"] = 11  # a new client for the endpoint
        setup.data["workers"] = 6
        setup.data["log"] = {"level": "warning"}  # were it applied, no file.done below
        setup.write()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded")
        assert daemon.named("config.reloaded")[0]["added"] == [str(second)]
        assert daemon.named("config.needs_restart")[0]["keys"] == ["workers", "log.level"]
        make_wav(second / "new-inbox.wav", freq=500)
        make_wav(setup.inbox / "after.wav", freq=700)
        daemon.wait_event("file.done", 3)
        setup.config_path.write_text(yaml.safe_dump({**setup.data, "workers": "many"}))
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reload_failed")
        make_wav(second / "still-running.wav", freq=900)
        daemon.wait_event("file.done", 4)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    models = {u.filename: u.fields["model"] for u in setup.api.uploads}
    assert models == {
        "before.wav": "whisper-1",
        "new-inbox.wav": "gpt-4o-transcribe",
        "after.wav": "gpt-4o-mini-transcribe",
        "still-running.wav": "gpt-4o-transcribe",
    }
    problems = daemon.named("config.reload_failed")[0]["problems"]
    assert any("workers" in p for p in problems)
    assert (second / "still-running.txt").exists()


def test_metrics_and_healthz_over_http(setup):
    """/metrics counts uploads, bytes, latency and ledger states; /healthz says ok; 127.0.0.1
    only; a scraper that connects and sends nothing does not hold up stopping."""
    import socket

    import httpx

    setup.data["metrics"] = {"port": 0}
    daemon = DaemonProcess(setup)
    idle = socket.socket()
    try:
        daemon.wait_event("metrics.listening")
        url = daemon.named("metrics.listening")[0]["url"]
        assert url.startswith("http://127.0.0.1:")
        make_wav(setup.inbox / "counted.wav")
        daemon.wait_event("file.done")
        base = url.removesuffix("/metrics")
        health = httpx.get(f"{base}/healthz")
        text = httpx.get(url).text
        host, port = base.removeprefix("http://").split(":")
        idle.connect((host, int(port)))
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        idle.close()
        daemon.kill()
    assert (health.status_code, health.text) == (200, "ok\n")
    size = (setup.inbox / "counted.wav").stat().st_size
    assert 'dropscribe_uploads_total{endpoint="local",status="200"} 1.0' in text
    assert f'dropscribe_upload_bytes_total{{endpoint="local"}} {float(size)}' in text
    assert 'dropscribe_upload_seconds_count{endpoint="local"} 1.0' in text
    assert 'dropscribe_files{state="done"} 1.0' in text
    assert 'dropscribe_outcomes_total{outcome="done"} 1.0' in text
    assert "dropscribe_queue_depth 0.0" in text
    assert 'dropscribe_inbox_watched{inbox="inbox"} 1.0' in text


def test_once_on_a_terminal_draws_a_progress_bar(setup):
    """once with stderr on a TTY shows a progress bar instead of info events; an error
    event is its own line, never glued to the bar; a summary line ends it; exit 1."""
    import os
    import pty
    import subprocess
    import sys

    for n in range(3):
        make_wav(setup.inbox / f"p{n}.wav", freq=300 + 100 * n)
    setup.data["log"] = {"format": "console"}
    setup.data["workers"] = 1
    setup.api.script.append(openai_error(400, "Invalid file format."))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(setup.write())],
        stderr=follower,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **setup.env},
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert proc.wait(30) == 1
    text = output.decode()
    assert "[##############################] 3/3 files, 1 failed\r\n" in text
    assert "file.done" not in text, "info events stay quiet under the bar"
    lines = text.replace("\r\n", "\n").split("\n")
    (error,) = [line for line in lines if "file.failed" in line]
    assert "files" not in error.rpartition("\x1b[2K")[2].split("file.failed")[0]
    summary = (
        f"2 done, 0 skipped, 1 failed (why: dropscribe status -c {setup.config_path};"
        f" quarantined files are in {setup.inbox / 'failed'})"
    )
    assert summary in lines


def test_signal_flag_is_taken_once_per_raise():
    """The SIGHUP flag reads as raised once after each signal (twice raised: once
    taken), then lowered."""
    from dropscribe.commands.signals import SignalFlag

    flag = SignalFlag()
    assert not flag.take()
    flag.raise_()
    flag.raise_()
    assert flag.take()
    assert not flag.take()


def _in_daemon_run(line: str) -> bool:
    return "dropscribe/service.py" in line and line.rstrip().endswith(" in run")


def test_sigusr1_writes_every_threads_stack_and_the_daemon_goes_on(setup):
    """SIGUSR1 (for a daemon that seems stuck) writes each thread's stack to stderr, the
    main thread's among them, and the daemon keeps running and stops cleanly after."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        daemon.signal(signal.SIGUSR1)
        # the main thread is inside Daemon.run from daemon.started until it stops
        daemon.wait_output(lambda: any(_in_daemon_run(line) for line in daemon.raw), 10, "stacks")
        make_wav(setup.inbox / "after.wav")
        daemon.wait_event("file.done")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert any("most recent call first" in line for line in daemon.raw)


def test_a_second_sigterm_stops_at_once(setup):
    """SIGTERM waits for uploads in flight; a second one stops the process at once with
    exit 0, and the file is transcribed at the next start (the ledger is crash-safe)."""
    setup.data["shutdown_grace"] = 60
    setup.api.hold()
    make_wav(setup.inbox / "held.wav")
    daemon = DaemonProcess(setup)
    try:
        assert setup.api.wait_waiting(1, timeout=20)
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon.stopping")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    finally:
        setup.api.release()
        daemon.kill()
    assert "stopping at once" in "".join(daemon.raw)
    assert not (setup.inbox / "held.txt").exists()
    again = DaemonProcess(setup, command="once")
    assert again.wait() == 0
    assert (setup.inbox / "held.txt").exists()
