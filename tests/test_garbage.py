"""No garbage marked done: an English-only local model with another language (or a
translation) is a config error, and an empty answer for audio that holds speech is a
failure with its reason, while an empty answer for silence is still done."""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from typing import TYPE_CHECKING

import numpy as np
import pytest

from conftest import DaemonProcess

if TYPE_CHECKING:
    from pathlib import Path

SPOKEN = "Hello there. This recording holds a few seconds of clear English speech."


def speak(path: Path, text: str = SPOKEN, voice: str = "en") -> Path:
    """Real speech, synthesised by espeak-ng."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
    return path


def quiet(path: Path, seconds: float = 5.0) -> Path:
    """Room noise only (no speech)."""
    noise = np.random.default_rng(1).normal(0, 30, round(16000 * seconds)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(noise.tobytes())
    return path


def local_tiny_en(setup, **folder: str) -> None:
    """The bundled tiny.en for every folder; ``folder``: the inbox's own settings."""
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en"}
    setup.data["inboxes"][0].update(folder)


def _line_of(setup, key: str) -> int:
    lines = setup.config_path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:"))


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [("language", "de", "or language: en"), ("task", "translate", "or task: transcribe")],
)
def test_check_config_refuses_tiny_en_with_another_language_or_translate(setup, key, value, fix):
    """tiny.en with language: de (or task: translate) is a problem at its file:line and
    key, naming a multilingual model as the fix; check-config exits 2."""
    local_tiny_en(setup, **{key: value})
    result = setup.command("check-config")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    where = f"{setup.config_path}:{_line_of(setup, key)}: inboxes[0].{key}:"
    assert where in line, line
    assert "knows English only" in line
    assert "multilingual model" in line
    assert fix in line


def test_check_config_takes_tiny_en_with_english(setup):
    """tiny.en with language: en is fine (no false refusal)."""
    local_tiny_en(setup, language="en")
    result = setup.command("check-config")
    assert result.returncode == 0, result.stderr


def test_an_empty_answer_for_real_speech_is_a_failure_with_its_reason(setup):
    """An API answering an empty text for espeak-ng speech: the file is quarantined with
    the reason (seconds of speech heard), not done; status and explain say so."""
    setup.api.answer = lambda upload: {"text": ""}
    speak(setup.inbox / "talk.wav")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait() == 1
    assert not daemon.named("file.done")
    [failed] = daemon.named("file.failed")
    assert failed["error"].startswith("the answer was empty although ")
    seconds = float(failed["error"].split("although ")[1].split(" s of speech")[0])
    assert 2.0 < seconds < 8.0, failed
    assert not (setup.inbox / "talk.txt").exists()
    found = json.loads(setup.command("status", "--json").stdout)
    [item] = found["files"]
    assert item["state"] == "quarantined"
    assert "the answer was empty" in item["reason"]
    explained = setup.command("explain", str(setup.inbox / "talk.wav"))
    assert explained.returncode == 1
    assert "ledger: failed" in explained.stdout
    assert "the answer was empty" in explained.stdout


def test_an_empty_answer_for_silence_is_still_done(setup):
    """Room noise answered with an empty text is done, with an empty transcript: no
    false failure."""
    setup.api.answer = lambda upload: {"text": ""}
    quiet(setup.inbox / "room.wav")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait() == 0
    assert not daemon.named("file.failed")
    [done] = daemon.named("file.done")
    assert done["outputs"] == [str(setup.inbox / "room.txt")]
    assert (setup.inbox / "room.txt").read_text().strip() == ""


def test_speech_is_heard_by_the_vad_and_by_loudness_and_silence_by_neither(tmp_path, monkeypatch):
    """heard(): seconds of speech in espeak-ng speech, none in room noise, with the VAD
    and with the loudness check used where faster-whisper is missing."""
    import importlib.util

    from dropscribe.timing import heard

    talk, room = speak(tmp_path / "talk.wav"), quiet(tmp_path / "room.wav")
    assert heard.heard(talk).how == "vad"
    assert heard.heard(talk).speech
    assert not heard.heard(room).speech
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "faster_whisper" else real(name)
    )
    assert heard.heard(talk).how == "energy"
    assert heard.heard(talk).speech
    assert not heard.heard(room).speech
    assert heard.empty_answer(room) is None
