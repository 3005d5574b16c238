"""attack20: a hostile server's 200 for a half-second recording, held to that recording.
An answer was held only to its own claims: its text uncounted (a 64 MiB answer of short
words was 12 minutes of a worker and 8 GB in the cues), and its times its own (a million
segments at up to 10^6 s were taken for one minute's audio). Each is refused now, naming
the count and the cap, and the recording quarantined without a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav
from fakeapi import Reply

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow


def answered(setup: Setup, answer: dict[str, Any]) -> DaemonProcess:
    """``dropscribe once`` on a 0.5-s recording answered (once) with ``answer``."""
    setup.data["defaults"]["formats"] = ["txt", "srt", "json"]
    setup.data["endpoints"]["local"]["max_attempts"] = 1
    setup.api.script.append(Reply(200, answer))
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup, command="once")
    try:
        daemon.wait(timeout=60)
    finally:
        daemon.kill()
    assert not any("Traceback" in line for line in daemon.raw)
    return daemon


def refused(daemon: DaemonProcess, words: str) -> None:
    (failed,) = daemon.named("file.failed")
    assert failed["error"].startswith(words), failed["error"]
    assert not daemon.named("file.done")


def test_a_text_of_more_characters_than_speech_can_hold_is_refused(setup):
    """300,000 characters of short words for a recording the answer says is 1 s: refused
    as it is read (200 a second, 100,000 at least), no sidecar written."""
    daemon = answered(setup, {"text": "ab " * 100_000, "duration": 1.0})
    refused(daemon, "answer has 299,999 characters of text for 1 s of audio; at most 100,000")
    assert not (setup.inbox / "a.txt").exists()


def test_segments_whose_text_is_more_than_speech_can_hold_are_refused(setup):
    """One segment of 150,000 CJK characters (each a word of the cues) beside a short
    text: refused for the characters in segments (escaped, under answers21's 1 MiB)."""
    segment = {"start": 0.0, "end": 0.5, "text": "中" * 150_000}
    daemon = answered(setup, {"text": "中", "duration": 0.5, "segments": [segment]})
    refused(daemon, "answer has 150,000 characters in segments for 0.5 s of audio")


def test_an_answer_whose_own_times_claim_hours_is_held_to_the_recording(setup):
    """20,000 segments at times up to 20,000 s (and a duration to match) for a 0.5-s
    recording: held to the probed 0.5 s (twice it, 2,000 at least), refused."""
    segments = [{"start": n, "end": n + 1.0, "text": "w"} for n in range(20_000)]
    daemon = answered(setup, {"text": "w", "duration": 20_000.0, "segments": segments})
    refused(daemon, "answer has 20,000 segments for 0.5 s of audio; at most 2,000")
    assert not (setup.inbox / "a.srt").exists()


def test_a_chunks_answer_is_held_to_the_chunk_before_it_is_checkpointed(setup):
    """A 40-s recording sent in chunks, each answered with 900,000 characters and a
    claimed 10,000 s: the first chunk's answer is refused, naming the chunk and the cap,
    and none goes into the ledger (each chunk's megabytes were checkpointed there before
    the whole was refused)."""
    setup.data["defaults"]["formats"] = ["srt"]
    setup.data["endpoints"]["local"].update({"max_upload_bytes": 100_000, "max_attempts": 1})
    setup.api.answer = lambda _upload: {"text": "ab " * 300_000, "duration": 10_000.0}
    make_wav(setup.inbox / "long.wav", seconds=40)
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait(timeout=120) == 1
    (failed,) = daemon.named("file.failed")
    assert failed["error"].startswith("chunk 1 of "), failed["error"]
    assert "answer has 899,999 characters of text for " in failed["error"]
    ledger = sum(p.stat().st_size for p in setup.state.glob("*.sqlite*"))
    assert ledger < 1_000_000, f"{ledger:,} bytes of ledger"
