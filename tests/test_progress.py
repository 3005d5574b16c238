"""file.progress: a long transcription says how far it is, in the log and on once's bar."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import wave
from pathlib import Path

import pytest
import structlog

from conftest import LONG_SPEECH, DaemonProcess, make_wav, named, wait_for, write_tones
from dropscribe.ops import progress
from fakeapi import openai_error

FAST = {progress.ENVIRONMENT: "0.1"}  # file.progress every 0.1 s instead of 30


def test_the_interval_is_thirty_seconds_unless_the_environment_says_otherwise():
    """DROPSCRIBE_PROGRESS_SECONDS sets the interval; anything but a positive number is 30."""
    assert progress.interval_from({}) == 30
    assert progress.interval_from({progress.ENVIRONMENT: "0.5"}) == 0.5
    for wrong in ("", "0", "-3", "soon", "inf", "nan"):
        assert progress.interval_from({progress.ENVIRONMENT: wrong}) == 30, wrong


def test_a_told_transcription_says_where_it_is_until_it_ends(events):
    """Once the engine says where it is, file.progress comes every interval with the file's
    path, seconds done of total and the percentage; nothing after the block ends."""
    with (
        structlog.contextvars.bound_contextvars(path="/in/talk.wav"),
        progress.Told(1200.0, interval=0.01),
    ):
        progress.at(300.0)
        progress.at(100.0)  # never goes back
        wait_for(lambda: named(events, "file.progress"), what="a progress event")
    said = named(events, "file.progress")
    assert said[0] == {
        "event": "file.progress",
        "log_level": "info",
        "path": "/in/talk.wav",
        "done_seconds": 300.0,
        "total_seconds": 1200.0,
        "percent": 25,
    }
    ended = len(said)
    assert not [t for t in threading.enumerate() if t.name == "dropscribe-progress"]
    assert len(named(events, "file.progress")) == ended


def test_nothing_is_told_of_an_engine_that_does_not_count(events):
    """A whole upload says nothing of where it is: no thread, no file.progress."""
    before = threading.active_count()
    with progress.Told(60.0, interval=0.001):
        assert threading.active_count() == before
    progress.at(5.0)  # outside any transcription: nothing to tell
    assert not named(events, "file.progress")


def test_chunks_count_what_an_earlier_run_did(events):
    """Chunked: chunks done of all and their seconds, reused ones included."""
    with progress.Told(None, interval=0.01) as told:
        progress.planned(4, 100.0, [25.0])
        progress.chunk_done(25.0)
        assert told.fields() == {
            "done_seconds": 50.0,
            "total_seconds": 100.0,
            "percent": 50,
            "chunks_done": 2,
            "chunks": 4,
        }
        wait_for(lambda: named(events, "file.progress"), what="a progress event")


def test_the_bar_fills_with_the_part_done_and_names_the_percentage():
    """The bar counts the part done of files in progress and shows their percentage; it
    forgets a file whose transcription ended; a name's escape codes are shown, not run."""
    out = io.StringIO()
    bar = progress.Bar(out)
    try:
        bar.draw(1, 4, 0)
        with structlog.contextvars.bound_contextvars(path="/in/a\x1b[2Jb.wav"):
            told = progress.Told(100.0, interval=60)
        with told:
            progress.at(50.0)
            line = out.getvalue().rpartition(progress.CLEAR)[2]
            assert line == f"[{'#' * 11}{'.' * 19}] 1/4 files; a\\x1b[2Jb.wav 50%"
        line = out.getvalue().rpartition(progress.CLEAR)[2]
        assert line == f"[{'#' * 7}{'.' * 23}] 1/4 files"
    finally:
        progress._listeners.clear()


def test_library_logging_warnings_and_thread_crashes_are_events(events):
    """Python logging of warning and above, warnings.warn and an exception no thread caught
    become events (library.logged, python.warning, thread.crashed); library info does not."""
    import logging
    import warnings

    from dropscribe.ops import log

    log.configure("json", "info", stream=io.StringIO())
    try:
        with structlog.testing.capture_logs() as captured:
            logging.getLogger("faster_whisper").warning("model is %s", "English-only")
            logging.getLogger("httpx").info("HTTP Request: chatter")
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("old call", DeprecationWarning, stacklevel=1)
            thread = threading.Thread(target=lambda: 1 / 0, name="dropscribe-crash")
            hook = threading.excepthook
            threading.excepthook = log._thread_crashed  # pytest's own hook sits in between
            try:
                thread.start()
                thread.join()
            finally:
                threading.excepthook = hook
    finally:
        log.configure("json", "debug", stream=sys.stderr)
    by_name = {e["event"]: e for e in captured}
    assert set(by_name) == {"library.logged", "python.warning", "thread.crashed"}
    assert by_name["library.logged"]["logger"] == "faster_whisper"
    assert by_name["library.logged"]["message"] == "model is English-only"
    assert by_name["python.warning"]["category"] == "DeprecationWarning"
    assert by_name["python.warning"]["where"].startswith(__file__)
    assert by_name["thread.crashed"]["thread"] == "dropscribe-crash"
    assert by_name["thread.crashed"]["exc_info"][0] is ZeroDivisionError


def test_console_lines_on_a_terminal_start_at_the_line_s_start():
    """On a terminal each console line first clears the line it is on (a bar drawn by
    another process); in a file or pipe lines are as rendered."""
    from dropscribe.ops import log

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, plain = Terminal(), io.StringIO()
    try:
        for out in (terminal, plain):
            log.configure("console", "info", stream=out)
            structlog.get_logger("dropscribe").warning("a.line")
    finally:
        log.configure("json", "debug", stream=sys.stderr)
    assert terminal.getvalue().startswith(progress.CLEAR)
    assert "a.line" in plain.getvalue()
    assert not plain.getvalue().startswith("\r")


def _speech(path: Path, copies: int) -> Path:
    """``copies`` times half a minute of espeak-ng speech, two seconds of silence between."""
    frames, rate = b"", 0
    for n in range(copies):
        part = path.with_suffix(f".{n}.wav")
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(part), LONG_SPEECH], check=True)
        with wave.open(str(part)) as one:
            rate = one.getframerate()
            frames += one.readframes(one.getnframes()) + b"\0\0" * rate * 2
        part.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def _speak(path: Path, text: str) -> Path:
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


def _local(setup, batch: int | str = "auto") -> None:
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2, "batch_size": batch}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}


def _a_model_with_a_broken_preprocessor_config(setup) -> None:
    """tiny.en's files in a folder of their own beside a preprocessor_config.json that is
    not JSON: faster-whisper itself then warns, as it loads the model, that it could not
    load it (and goes on with the defaults)."""
    from dropscribe.transcribe.local import resolve_model

    standin = setup.root / "standin"
    standin.mkdir()
    for part in Path(resolve_model("tiny.en")[0]).iterdir():
        (standin / part.name).symlink_to(part)
    (standin / "preprocessor_config.json").write_text("{not json")
    setup.data["defaults"]["model"] = str(standin)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [2, 1])
def test_a_long_local_transcription_tells_its_progress(setup, batch):
    """A local transcription of several pieces (batched) or windows (one at a time) logs
    file.progress again and again with the interval lowered: the file, seconds done rising
    to the recording's length, the percentage."""
    _local(setup, batch)
    talk = _speech(setup.inbox / "talk.wav", 2)
    daemon = DaemonProcess(setup, "once", env=FAST)
    assert daemon.wait(300) == 0
    said = daemon.named("file.progress")
    (probed,) = daemon.named("audio.probed")
    assert len(said) >= 2, said
    assert {e["path"] for e in said} == {str(talk)}
    assert {e["total_seconds"] for e in said} == {round(probed["seconds"], 1)}
    done = [e["done_seconds"] for e in said]
    assert done == sorted(done)
    assert done[-1] > 30, "the engine said it was past the first piece"
    # the percentage is of the exact seconds, shown to 0.1 s: within a point of theirs
    assert all(abs(e["percent"] - 100 * e["done_seconds"] / e["total_seconds"]) < 1.2 for e in said)
    assert daemon.named("file.done")


@pytest.mark.slow
def test_a_chunked_upload_tells_chunks_done_of_all(setup):
    """A recording sent in chunks logs file.progress with chunks done of all and seconds."""
    _chunked(setup)
    daemon = DaemonProcess(setup, "once", env=FAST)
    assert daemon.wait(120) == 0
    said = daemon.named("file.progress")
    assert said, "no file.progress"
    assert {e["chunks"] for e in said} == {len(daemon.named("chunk.done"))}
    done = [e["chunks_done"] for e in said]
    assert done == sorted(done)
    assert done[-1] >= 3
    assert {e["path"] for e in said} == {str(setup.inbox / "long.wav")}


def _chunked(setup) -> None:
    """Two and a half minutes of tones over the upload limit: sent as five chunks of 30 s,
    one at a time."""
    setup.api.delay = 0.3
    setup.data["defaults"]["chunk_seconds"] = 30
    setup.data["endpoints"]["local"].update({"max_concurrency": 1, "max_upload_bytes": 300_000})
    tones = [(t, t + 27, 300 + 5 * t) for t in range(0, 150, 30)]
    write_tones(setup.inbox / "long.wav", tones, 150)


# once's bar as drawn: what follows it on the terminal must be a return (to clear or end it)
BAR = re.compile(r"\[[#.]{30}\] \d+/\d+ files(, \d+ failed)?(; [^\r\n\x1b]*)?")


def _glued(text: str) -> list[str]:
    """Whatever was written on the bar's line after the bar."""
    return [
        text[m.end() : m.end() + 60]
        for m in BAR.finditer(text)
        if m.end() < len(text) and text[m.end()] != "\r"
    ]


def _on_a_terminal(setup, env: dict[str, str]) -> tuple[int, str]:
    """Run once with stdout and stderr on a pseudo-terminal: its exit code and output."""
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(setup.write())],
        stdout=follower,
        stderr=follower,
        env={**os.environ, **setup.env, **env},
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
    return proc.wait(30), output.decode()


@pytest.mark.slow
def test_once_shows_the_percentage_on_its_bar(setup):
    """once on a terminal shows a file's percentage on the bar while it is sent in chunks."""
    setup.data["log"] = {"format": "console"}
    _chunked(setup)
    code, text = _on_a_terminal(setup, {})
    assert code == 0, text
    bars = [b for b in text.replace("\r\n", "\n").split(progress.CLEAR) if b.startswith("[")]
    shown = [int(m) for b in bars for m in re.findall(r"0/1 files; long\.wav (\d+)%", b)]
    assert any(0 < percent < 100 for percent in shown), bars
    assert "1 done, 0 skipped, 0 failed" in text


@pytest.mark.slow
def test_a_library_warning_under_the_bar_is_a_line_of_its_own(setup):
    """faster-whisper's own warning (a preprocessor config it cannot read) is an event
    on its own line under once's bar, never glued to the bar, and the bar comes back."""
    _local(setup)
    _a_model_with_a_broken_preprocessor_config(setup)
    setup.data["log"] = {"format": "console"}
    _speak(setup.inbox / "hum.wav", "Hello there, how are you today?")
    code, text = _on_a_terminal(setup, {})
    assert code == 0, text
    lines = text.replace("\r\n", "\n").split("\n")
    (warned,) = [line for line in lines if "preprocessor config" in line]
    assert "library.logged" in warned.rpartition(progress.CLEAR)[2], warned
    assert not _glued(text)
    after = text.partition("preprocessor config")[2]
    assert "] 0/1 files" in after or "] 1/1 files" in after, "the bar is drawn again"


@pytest.mark.slow
def test_a_worker_process_line_under_the_bar_is_a_line_of_its_own(setup):
    """With worker processes (which cannot see once's bar), an error event still starts on
    its own line rather than running on from the bar, and the bar is drawn again after it."""
    for n in range(3):
        make_wav(setup.inbox / f"p{n}.wav", freq=300 + 100 * n)
    setup.data.update({"log": {"format": "console"}, "workers": 2, "processes": 2})
    setup.api.script.append(openai_error(400, "Invalid file format."))
    code, text = _on_a_terminal(setup, {})
    assert code == 1, text
    assert "upload.failed" in text
    assert "file.failed" in text
    assert not _glued(text)
    assert "] 3/3 files, 1 failed" in text.partition("file.failed")[2], "the bar comes back"


@pytest.mark.slow
def test_every_line_of_a_json_log_is_json_library_warnings_included(setup):
    """With log format json, every stderr line of a real run parses as JSON, faster-whisper's
    warning included (as library.logged, with its logger and message)."""
    import json

    _local(setup)
    _a_model_with_a_broken_preprocessor_config(setup)
    setup.data["log"] = {"format": "json"}
    _speak(setup.inbox / "hum.wav", "Hello there, how are you today?")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait(120) == 0
    for line in daemon.raw:
        json.loads(line)
    (said,) = daemon.named("library.logged")
    assert said["logger"] == "faster_whisper"
    assert said["level"] == "warning"
    assert "Could not load preprocessor config" in said["message"]
    assert said["path"] == str(setup.inbox / "hum.wav")
