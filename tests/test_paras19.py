"""paras19: a folder's txt is the same whatever else it writes. The same recording in a
folder writing txt alone and in one writing txt and srt gives the same txt, byte for
byte: through the real ``dropscribe`` process, with the local engine on its sequential
path (tiny.en, real espeak-ng speech) and with the fake API over a real socket."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup
    from fakeapi import Upload

pytestmark = pytest.mark.slow

# Pauses inside sentences, where Whisper's segments run on and its words stop.
PAUSED = (
    '<speak>The meeting started late because <break time="1800ms"/> the trains were slow.'
    ' We talked about the budget for next year <break time="1700ms"/> and the new office.'
    ' Everyone agreed that the plan was good, <break time="1600ms"/> and after lunch we'
    " looked at the reports from the field teams. Thank you all"
    ' <break time="2000ms"/> for coming today.</speak>'
)


def _folders(setup: Setup) -> None:
    """Two folders of one inbox: txt alone, and txt beside srt."""
    setup.data["inboxes"][0]["rules"] = [
        {"folder": "plain", "formats": ["txt"]},
        {"folder": "both", "formats": ["txt", "srt"]},
    ]


def _both(setup: Setup, recording: Path) -> tuple[bytes, bytes]:
    """``recording`` dropped into both folders, ``dropscribe once`` run; the two txt."""
    for folder in ("plain", "both"):
        (setup.inbox / folder).mkdir()
        shutil.copy(recording, setup.inbox / folder / "m.wav")
    daemon = DaemonProcess(setup, command="once")
    try:
        assert daemon.wait(300) == 0, daemon
    finally:
        daemon.kill()
    assert len(daemon.named("file.done")) == 2, daemon
    return (setup.inbox / "plain/m.txt").read_bytes(), (setup.inbox / "both/m.txt").read_bytes()


def test_local_sequential_txt_is_the_same_beside_srt(setup: Setup) -> None:
    """The local engine's sequential path (batch_size: 1): txt alone is txt beside srt."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2, "batch_size": 1}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}
    _folders(setup)
    speech = setup.root / "speech.wav"
    subprocess.run(["espeak-ng", "-m", "-s", "160", "-w", str(speech), PAUSED], check=True)
    plain, both = _both(setup, speech)
    assert plain == both
    assert plain.count(b"\n\n") >= 1, plain  # paragraphs at the pauses, not by length


def _segmented(upload: Upload) -> dict[str, Any]:
    """whisper-1's answer: two segments with a 2-s pause between them (the fake server
    gives the text alone where json is asked for)."""
    first, second = "We talked about the budget.", "Then we looked at the reports."
    return {
        "task": "transcribe",
        "language": "english",
        "duration": 8.0,
        "text": f"{first} {second}",
        "segments": [
            {"id": 0, "seek": 0, "start": 0.0, "end": 2.5, "text": f" {first}"},
            {"id": 1, "seek": 0, "start": 4.5, "end": 7.0, "text": f" {second}"},
        ],
    }


def test_endpoint_txt_is_the_same_beside_srt(setup: Setup) -> None:
    """whisper-1 over a real socket: txt alone asks for the segments srt asks for, and
    its paragraphs are the same."""
    setup.api.answer = _segmented
    _folders(setup)
    plain, both = _both(setup, make_wav(setup.root / "tone.wav", seconds=8.0))
    assert plain == both == b"We talked about the budget.\n\nThen we looked at the reports.\n"
    asked = {u.filename: u.fields.get("response_format") for u in setup.api.uploads}
    assert set(asked.values()) == {"verbose_json"}, asked
