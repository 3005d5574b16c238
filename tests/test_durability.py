"""Nothing lost, nothing twice: bad input, quarantine, retry, pauses, the ledger across restarts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DaemonProcess, make_wav, named, started, wait_for, wav_bytes
from dropscribe import names
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger
from dropscribe.outputs.disposition import error_report
from fakeapi import openai_error


def report(setup, name):
    return json.loads((setup.inbox / "failed" / f"{name}.error.json").read_text())


def test_bad_inputs_are_quarantined_with_a_reason_and_the_rest_go_on(setup, events):
    """Empty, not-audio and truncated files go to failed/ with a report; good files still work."""
    (setup.inbox / "empty.wav").write_bytes(b"")
    (setup.inbox / "notes.mp3").write_text("these are my meeting notes, not audio\n" * 20)
    (setup.inbox / "cut.wav").write_bytes(wav_bytes()[:30])
    make_wav(setup.inbox / "good.wav")
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.failed")) == 3, what="three failures")
        wait_for(lambda: named(events, "file.done"), what="the good file")
    assert report(setup, "empty.wav")["reason"] == "empty file"
    assert report(setup, "notes.mp3")["reason"].startswith("not a readable audio file")
    assert report(setup, "cut.wav")["source"] == str(setup.inbox / "cut.wav")
    assert not (setup.inbox / "notes.mp3").exists()
    assert (setup.inbox / "failed" / "notes.mp3").exists()
    assert [u.filename for u in setup.api.uploads] == ["good.wav"]


@pytest.mark.parametrize(
    "name",
    ["clip.wav", "я" * 124 + ".wav", os.fsdecode(b"caf\xe9.wav")],
    ids=["short", "long", "latin-1 bytes"],
)
def test_server_rejection_is_quarantined_and_retry_requeues_it(setup, events, name):
    """A 400 quarantines the file with its report; `dropscribe retry --all` brings it back
    and it succeeds (also for a 252-byte name, whose report takes a shortened name, and
    for a name that is not UTF-8, as an old FAT recorder writes them)."""
    setup.api.script.append(openai_error(400, "Invalid file format."))
    make_wav(setup.inbox / "sub" / name)
    with setup.daemon():
        wait_for(lambda: named(events, "file.failed"), what="failure")
        quarantined = setup.inbox / "failed" / "sub" / name
        assert quarantined.exists()
        report = error_report(quarantined)
        error = json.loads(report.read_text())
        assert (error["status"], error["reason"]) == (400, "HTTP 400: Invalid file format.")
        assert error["attempts"] == 1
        result = subprocess.run(
            [sys.executable, "-m", "dropscribe", "retry", "-c", str(setup.config_path), "--all"],
            capture_output=True,
            text=True,
            errors="surrogateescape",
            env={**os.environ, **setup.env, "LC_ALL": "C.UTF-8"},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        shown = names.text(name)  # an odd byte is printed as \xNN
        assert f"{shown}: queued again (was: HTTP 400: Invalid file format.)" in result.stdout
        wait_for(lambda: named(events, "file.done"), what="done after retry")
    sidecar = (setup.inbox / "sub" / name).with_suffix(".txt")
    assert sidecar.read_text() == f"transcript of {names.readable(name)}\n"
    assert not quarantined.exists()
    assert not report.exists()
    assert not named(events, "file.quarantine_failed")


def test_directories_symlinks_and_odd_names(setup, events, tmp_path):
    """A folder named x.wav and symlinks are not uploaded; spaces, unicode, quotes, newlines are."""
    outside = make_wav(tmp_path / "elsewhere" / "secret.wav")
    (setup.inbox / "x.wav").mkdir()
    make_wav(setup.inbox / "x.wav" / "inner.wav")
    (setup.inbox / "link.wav").symlink_to(outside)
    odd = ["with space.wav", "ünïcødé 録音.wav", 'quote\'s "q".wav', "new\nline.wav"]
    for n, name in enumerate(odd):
        make_wav(setup.inbox / name, freq=300 + 40 * n)
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 5, what="five done")
    assert sorted(u.filename for u in setup.api.uploads) == sorted(
        ["inner.wav", "with space.wav", "ünïcødé 録音.wav", "quote's %22q%22.wav", "new%0Aline.wav"]
    )
    for name in odd:
        stem = name.removesuffix(".wav")
        assert (setup.inbox / f"{stem}.txt").exists(), name
    ignored = {e["path"]: e["reason"] for e in named(events, "file.ignored")}
    assert ignored[str(setup.inbox / "link.wav")] == "symbolic link"
    assert not (setup.inbox / "failed").exists()


def test_vanished_file_is_reported_not_quarantined(setup, events):
    """A file deleted between settling and upload is a file.vanished event and nothing else."""
    from dropscribe.jobs.job import SettledFile
    from dropscribe.jobs.runner import JobRunner

    cfg = setup.load()
    ledger = SqliteLedger(setup.state / LEDGER_NAME)
    try:
        import threading

        runner = JobRunner(ledger, {}, threading.Event(), work=setup.state / "work")
        runner(SettledFile(cfg.inboxes[0], setup.inbox / "gone.wav"))
    finally:
        ledger.close()
    assert named(events, "file.vanished")
    assert runner.tally.skipped == 1


def test_outage_pauses_the_endpoint_instead_of_failing_files(setup, events):
    """Repeated 503s pause the endpoint; a probe later resumes it; no file is quarantined."""
    setup.data["endpoints"]["local"].update(
        pause_after_failures=2, pause_seconds=0.5, max_attempts=10
    )
    setup.data["workers"] = 1
    setup.api.script.extend([openai_error(503, "Slow Down", type_="server_error")] * 3)
    make_wav(setup.inbox / "a.wav")
    make_wav(setup.inbox / "b.wav", freq=700)
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="both done", timeout=30)
    paused = named(events, "endpoint.paused")
    assert paused
    assert paused[0]["seconds"] == 0.5
    assert named(events, "endpoint.resumed")
    assert not named(events, "file.failed")


def test_bad_key_pauses_endpoint_and_resumes_when_fixed(setup, events):
    """A 401 pauses the endpoint at once (file kept); after the fix the probe goes through."""
    setup.data["endpoints"]["local"]["pause_seconds"] = 0.05  # 10x for a bad key: 0.5 s
    setup.api.script.append(
        openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
    )
    make_wav(setup.inbox / "k.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done after the pause", timeout=30)
    assert named(events, "endpoint.paused")[0]["status"] == 401
    assert len(setup.api.uploads) == 2
    attempts = [e["attempt"] for e in named(events, "upload.started")]
    assert attempts == [1, 1], "a paused endpoint does not use up the file's attempts"


@pytest.mark.parametrize("after", ["move", "delete"])
def test_after_success_moves_or_deletes_the_source(setup, events, after):
    """after: move puts the recording in done/; after: delete removes it; sidecars stay."""
    setup.data["defaults"]["after"] = after
    make_wav(setup.inbox / "m" / "memo.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    assert not (setup.inbox / "m" / "memo.wav").exists()
    assert (setup.inbox / "m" / "memo.txt").exists()
    assert (setup.inbox / "done" / "m" / "memo.wav").exists() == (after == "move")
    assert len(setup.api.uploads) == 1


def test_after_move_beside_a_namesake_numbers_it_within_the_name_limit(setup, events):
    """A recording moved into done/ where its name is taken gets "name (2).wav"; for a
    name near the 255-byte limit the name is cut short so the number fits."""
    setup.data["defaults"]["after"] = "move"
    names = ["memo.wav", "я" * 125 + ".wav"]  # the second: 254 bytes
    for name in names:
        make_wav(setup.root / "earlier" / name, freq=300)  # the namesake already in done/
        (setup.inbox / "done").mkdir(exist_ok=True)
        (setup.root / "earlier" / name).rename(setup.inbox / "done" / name)
        make_wav(setup.inbox / name)
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="both done")
    moved = sorted(p.name for p in (setup.inbox / "done").iterdir())
    assert "memo (2).wav" in moved
    (long,) = [m for m in moved if m.startswith("я") and m.endswith(" (2).wav")]
    assert len(os.fsencode(long)) <= 255
    assert not named(events, "file.after_failed")


def test_renamed_done_file_is_not_uploaded_again_but_new_content_is(setup, events):
    """A rename needs no upload; a recorder reusing the name with new audio gets a new transcript."""
    make_wav(setup.inbox / "Recording.m4a")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="first")
        (setup.inbox / "Recording.m4a").rename(setup.inbox / "Renamed.m4a")
        wait_for(lambda: len(named(events, "file.done")) == 2, what="renamed")
        (setup.inbox / "Recording.m4a").write_bytes(wav_bytes(freq=900))
        wait_for(lambda: len(named(events, "file.done")) == 3, what="reused name")
    assert [u.filename for u in setup.api.uploads] == ["Recording.m4a", "Recording.m4a"]
    assert setup.api.uploads[0].sha256 != setup.api.uploads[1].sha256
    assert named(events, "transcript.reused")
    assert (setup.inbox / "Renamed.txt").exists()


def test_settings_change_reruns_only_with_rerun_on_change(setup, events):
    """A new prompt re-runs finished files only when the folder says rerun_on_change: true."""
    make_wav(setup.inbox / "s.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    setup.data["defaults"]["prompt"] = "New glossary."
    setup.data["workers"] = 1
    with setup.daemon():
        wait_for(started(events), what="second start")
        make_wav(setup.inbox / "sentinel.wav", freq=123)  # queued behind s.wav, if it were
        wait_for(lambda: len(named(events, "file.done")) == 2, what="sentinel")
    assert [u.filename for u in setup.api.uploads] == ["s.wav", "sentinel.wav"]
    setup.data["defaults"]["rerun_on_change"] = True
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 3, what="rerun")
    # s.wav runs again with the new prompt; sentinel.wav already had it.
    assert [u.filename for u in setup.api.uploads[2:]] == ["s.wav"]
    assert setup.api.uploads[2].fields["prompt"] == "New glossary."
    assert named(events, "file.rerun")


def test_unwritable_output_is_not_marked_done_and_is_retried(setup, events):
    """An output folder that cannot be written (a file is in its place) fails the file
    before anything is sent; it stays undone and succeeds, uploaded once, when fixed."""
    blocker = setup.root / "out"
    blocker.write_text("a file where the output folder should be")
    setup.data["defaults"]["output_dir"] = str(blocker)
    setup.data["rescan_seconds"] = 0.5
    make_wav(setup.inbox / "w.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.failed"), what="write failure")
        assert named(events, "file.failed")[0]["error"].startswith("cannot write sidecars into")
        assert not setup.api.uploads
        assert not (setup.inbox / "failed").exists()
        blocker.unlink()
        wait_for(lambda: named(events, "file.done"), what="done after the fix")
    assert (blocker / "w.txt").exists()
    assert len(setup.api.uploads) == 1


def test_second_daemon_on_the_same_state_dir_refuses_to_start(setup):
    """Two daemons on one ledger would double-upload: the second exits 2 with a clear line."""
    first = DaemonProcess(setup)
    try:
        first.wait_event("daemon.started")
        second = DaemonProcess(setup)
        assert second.wait() == 2
        assert "another dropscribe is running with this state_dir" in "".join(second.raw)
    finally:
        first.kill()


def test_status_reports_counts_and_failures(setup, events):
    """status reads the ledger: counts by state and the latest failure with its reason."""
    setup.api.script.append(openai_error(422, "Unprocessable"))
    make_wav(setup.inbox / "ok.wav")
    make_wav(setup.inbox / "bad.wav", freq=999)
    setup.data["workers"] = 1
    with setup.daemon():
        wait_for(lambda: named(events, "file.done") and named(events, "file.failed"), what="both")
    out = subprocess.run(
        [sys.executable, "-m", "dropscribe", "status", "-c", str(setup.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        check=True,
    ).stdout
    assert "done       1" in out
    assert "failed     1" in out
    assert "HTTP 422: Unprocessable" in out
    shutil.rmtree(setup.state)


@pytest.mark.parametrize(
    "command", [["status"], ["explain", "inbox/a.wav"], ["retry", "--all"], ["once"]]
)
def test_a_damaged_ledger_is_one_clear_line_and_exit_2(setup, command):
    """A ledger that is not an SQLite database (a disk fault, a stray copy) makes every
    command say so in one line naming it, exit 2, no traceback."""
    setup.state.mkdir()
    (setup.state / LEDGER_NAME).write_bytes(b"not a database, just some bytes\n" * 200)
    args = [str(setup.root / a) if a.startswith("inbox/") else a for a in command[1:]]
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", command[0], "-c", str(setup.write()), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dropscribe: ")
    assert str(setup.state) in lines[0]
    assert "file is not a database" in lines[0]


def test_a_sidecar_name_too_long_for_the_filesystem_quarantines_that_file_only(setup, events):
    """A recording whose sidecar name could never fit is quarantined once with that
    reason (not retried at every rescan), no sidecar of it appears, and the daemon goes
    on with the next file; after the template is shortened, retry reuses the transcript."""
    setup.data["defaults"]["language"] = "en"
    setup.data["defaults"]["name_template"] = "{stem}.{language}.{ext}"
    long = setup.inbox / ("x" * 250 + ".wav")  # 254 bytes: its sidecar would be 257
    make_wav(long)
    with setup.daemon():
        wait_for(lambda: named(events, "file.failed"), what="the long name's failure")
        make_wav(setup.inbox / "short.wav")
        wait_for(lambda: named(events, "file.done"), what="the next file done")
    (failed,) = named(events, "file.failed")
    assert failed["error"].startswith("sidecar name too long for its filesystem: xxx")
    assert "name_template" in failed["error"]
    assert "again under a shorter name" in failed["error"]  # the name may be the cause
    assert failed["quarantined"] == str(setup.inbox / "failed" / long.name)
    assert (setup.inbox / "short.en.txt").exists()
    assert not [p for p in setup.inbox.iterdir() if p.name.startswith("xxx")]
    assert not named(events, "sidecar.failed")

    setup.data["defaults"]["name_template"] = "{stem}.{ext}"
    setup.write()
    retried = subprocess.run(
        [sys.executable, "-m", "dropscribe", "retry", "-c", str(setup.config_path), "--all"],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        check=False,
    )
    assert retried.returncode == 0, retried.stderr
    with setup.daemon():
        try:
            wait_for(lambda: len(named(events, "file.done")) == 2, what="the long one done")
        except BaseException:
            print("EVENTS", [(e["event"], e.get("error"), e.get("reason")) for e in events[18:]])
            raise
    assert long.with_suffix(".txt").exists()
    assert [u.filename for u in setup.api.uploads].count(long.name) == 1
