"""Long recordings and any container: probe, re-encode, cut at pauses, stitch, resume."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from conftest import DaemonProcess, make_wav, named, wait_for, write_tones
from dropscribe.audio import split, stitch, transcode
from dropscribe.jobs import plan
from dropscribe.service import Daemon
from dropscribe.transcript import Transcript
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings
from fakeapi import FakeAPI, tone_answer

# 24 tones of 4 s, each followed by a 1 s pause: a two-minute "recording".
TONES = [(5.0 * n, 5.0 * n + 4.0, 300 + 100 * n) for n in range(24)]
PAUSES = [(end, end + 1.0) for _, end, _ in TONES]
SECONDS = 120.0


def cues(srt: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue of an SRT file."""
    out = []
    for block in srt.strip().split("\n\n"):
        _, times, text = block.split("\n", 2)
        start, end = (_seconds(t) for t in times.split(" --> "))
        out.append((start, end, text))
    return out


def _seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def hertz(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"tone (\d+)", text)]


def same_tones(heard: list[int], placed: list[int]) -> bool:
    return len(heard) == len(placed) and all(
        abs(a - b) <= 20 for a, b in zip(heard, placed, strict=True)
    )


@pytest.fixture
def listening() -> FakeAPI:
    with FakeAPI(answer=tone_answer, listening=True) as server:
        yield server


def long_setup(setup, api: FakeAPI, **endpoint) -> None:
    setup.data["endpoints"]["local"].update(
        {"base_url": api.base_url, "max_upload_bytes": 300_000, **endpoint}
    )
    setup.data["defaults"].update(
        {"chunk_seconds": 30, "formats": ["txt", "srt", "vtt", "verbose_json"]}
    )


def test_decoded_recording_is_cut_inside_the_pauses_placed_in_it(tmp_path):
    """Cuts fall inside the silences of a real recording, and no chunk exceeds the limit."""
    source = write_tones(tmp_path / "talk.wav", TONES, SECONDS, rate=44100, channels=2)
    decoded = transcode.decode(source, tmp_path / "talk.pcm")
    assert decoded.seconds == pytest.approx(SECONDS, abs=0.01)
    spans = split.plan(decoded.envelope, decoded.seconds, target=30, longest=40)
    assert len(spans) == 4
    for span in spans[1:]:
        assert span.pause
        assert any(a < span.cut < b for a, b in PAUSES), span
        assert span.start == pytest.approx(span.cut - split.OVERLAP)
    assert all(span.seconds <= 40 for span in spans)
    assert spans[-1].end == pytest.approx(SECONDS)


def test_cut_falls_back_to_the_quietest_moment_without_pauses():
    """Continuous sound is cut at its quietest frame in the window and flagged as such."""
    envelope = split.loudness(__import__("numpy").full(16000 * 100, 8000, dtype="int16"), 16000)
    envelope[6000] = -40.0  # one quiet moment at 60 s
    spans = split.plan(envelope, 100.0, target=50, longest=80)
    assert len(spans) == 2
    assert not spans[1].pause
    assert abs(spans[1].cut - 60.0) < 0.1


def test_over_limit_recording_is_split_at_pauses_and_stitched_in_order(setup, listening):
    """A WAV over the upload limit goes up as Opus chunks cut in its pauses; the sidecars
    hold every tone once, in order, at its place on the source timeline."""
    long_setup(setup, listening)
    write_tones(setup.inbox / "talk.wav", TONES, SECONDS, rate=44100, channels=2)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0

    uploads = listening.uploads
    assert len(uploads) == 4
    assert all(u.filename.endswith(".ogg") and u.size <= 300_000 for u in uploads)
    assert all(u.fields["response_format"] == "verbose_json" for u in uploads)
    assert sum(u.size for u in uploads) * 10 < (setup.inbox / "talk.wav").stat().st_size
    placed = [hz for _, _, hz in TONES]
    srt = cues((setup.inbox / "talk.srt").read_text())
    assert same_tones([hertz(text)[0] for _, _, text in srt], placed)
    for (start, end, _), (placed_start, placed_end, _) in zip(srt, TONES, strict=True):
        assert start == pytest.approx(placed_start, abs=0.06)
        assert end == pytest.approx(placed_end, abs=0.06)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(srt))
    vtt = (setup.inbox / "talk.vtt").read_text()
    assert vtt.startswith("WEBVTT\n")
    assert vtt.count(" --> ") == 24
    verbose = json.loads((setup.inbox / "talk.verbose.json").read_text())
    assert [s["id"] for s in verbose["segments"]] == list(range(24))
    assert verbose["duration"] == pytest.approx(SECONDS, abs=0.01)
    assert same_tones(hertz((setup.inbox / "talk.txt").read_text()), placed)
    assert list((setup.state / "work").iterdir()) == []


def test_chunk_cuts_land_in_the_placed_pauses(setup, listening, events):
    """The cuts the daemon reports lie inside the silences the test placed."""
    long_setup(setup, listening)
    write_tones(setup.inbox / "talk.wav", TONES, SECONDS)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0
    (plan,) = named(events, "audio.split")
    assert plan["chunks"] == 4
    assert plan["outside_pauses"] == 0
    assert all(any(a < cut < b for a, b in PAUSES) for cut in plan["cuts"])
    (why,) = named(events, "audio.reencoding")
    assert "upload limit" in why["reason"]


SEED = [  # extension, container, codec, sample rate
    ("flac", "flac", "flac", 16000),
    ("mp3", "mp3", "libmp3lame", 16000),
    ("mp4", "mp4", "aac", 16000),
    ("mpeg", "mpeg", "mp2", 32000),
    ("mpga", "mp3", "libmp3lame", 16000),
    ("m4a", "ipod", "aac", 16000),
    ("ogg", "ogg", "libopus", 48000),
    ("oga", "ogg", "flac", 16000),
    ("webm", "webm", "libopus", 48000),
    ("opus", "ogg", "libopus", 48000),
]


def test_every_seed_format_and_video_containers_are_transcribed(setup, listening):
    """Each seed format is sent as it is (.opus re-encoded: OpenAI refuses the name); an
    mp4 or mkv with a picture track is sent as its audio track alone."""
    setup.data["endpoints"]["local"]["base_url"] = listening.base_url
    setup.data["inboxes"][0]["include"] = ["*.*"]
    expected = {}
    for n, (ext, container, codec, rate) in enumerate(SEED):
        tone = 400 + 100 * n
        write_tones(
            setup.inbox / f"a_{ext}.{ext}",
            [(0.5, 2.5, tone)],
            3.0,
            container=container,
            codec=codec,
            rate=rate,
        )
        expected[f"a_{ext}.{ext}"] = tone
    write_tones(
        setup.inbox / "film.mp4", [(0.5, 2.5, 1600)], 3.0, container="mp4", codec="aac", video=True
    )
    write_tones(
        setup.inbox / "movie.mkv",
        [(0.5, 2.5, 1700)],
        3.0,
        container="matroska",
        codec="libopus",
        rate=48000,
        video=True,
    )
    expected |= {"film.mp4": 1600, "movie.mkv": 1700}
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0

    by_name = {u.filename: u for u in listening.uploads}
    assert len(listening.uploads) == len(expected)
    for name, tone in expected.items():
        source = setup.inbox / name
        txt = source.with_suffix(".txt").read_text()
        assert same_tones(hertz(txt), [tone]), (name, txt)
        reencoded = name.endswith((".opus", ".mkv")) or name.startswith("film")
        if not reencoded:
            assert by_name[name].size == source.stat().st_size
    assert sum(1 for u in listening.uploads if u.filename == "0000.ogg") == 3


def test_video_without_audio_fails_clearly_before_any_upload(setup, listening):
    """An mp4 with only a picture track is quarantined as having no audio, never uploaded."""
    setup.data["endpoints"]["local"]["base_url"] = listening.base_url
    write_tones(
        setup.inbox / "silent.mp4", [], 2.0, container="mp4", codec="aac", video=True, audio=False
    )
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 1
    report = json.loads((setup.inbox / "failed" / "silent.mp4.error.json").read_text())
    assert "no audio stream" in report["reason"]
    assert "video" in report["reason"]
    assert listening.uploads == []


def test_carry_prompt_runs_chunks_in_order_with_the_previous_text(setup, listening):
    """With carry_prompt each chunk's prompt is the folder prompt plus the previous text."""
    long_setup(setup, listening)
    setup.data["defaults"].update({"carry_prompt": True, "prompt": "Tones."})
    write_tones(setup.inbox / "talk.wav", TONES[:15], 75.0)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0
    uploads = listening.uploads
    assert len(uploads) == 3
    assert uploads[0].fields["prompt"] == "Tones."
    for before, after in itertools.pairwise(uploads):
        said = " ".join(f"tone {hz}" for _, _, hz in before.tones)
        assert after.fields["prompt"].startswith("Tones. ")
        assert after.fields["prompt"].endswith(said)
        assert after.at >= before.at  # one at a time, in order


def test_failed_chunk_quarantines_the_file_and_removes_scratch_audio(setup, listening):
    """A chunk the server rejects fails the file with the chunk named; no scratch is left."""
    long_setup(setup, listening)
    setup.data["endpoints"]["local"]["max_concurrency"] = 1

    def answer(upload):
        if any(abs(hz - 1500) <= 20 for _, _, hz in upload.tones):  # the third chunk
            return {"no": "text"}
        return tone_answer(upload)

    listening.answer = answer
    write_tones(setup.inbox / "talk.wav", TONES, SECONDS)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 1
    report = json.loads((setup.inbox / "failed" / "talk.wav.error.json").read_text())
    assert report["reason"].startswith("chunk 3 of 4 (0:00:59-0:01:30): answer has no text")
    assert list((setup.state / "work").iterdir()) == []


def test_crash_between_chunks_resumes_without_redoing_finished_ones(setup, listening):
    """kill -9 after two of four chunks: the restart uploads only the other two."""
    long_setup(setup, listening, max_concurrency=1)
    release = threading.Event()

    def answer(upload):
        if len(listening.uploads) >= 3:
            release.wait(30)
        return tone_answer(upload)

    listening.answer = answer
    write_tones(setup.inbox / "talk.wav", TONES, SECONDS)
    first = DaemonProcess(setup)
    try:
        first.wait_event("chunk.done", 2, timeout=60)
        wait_for(lambda: len(listening.uploads) >= 3, 30, what="third chunk in flight")
        first.signal(signal.SIGKILL)
        first.wait()
    finally:
        release.set()
        first.kill()
    assert not (setup.inbox / "talk.txt").exists()
    explained = subprocess.run(
        [
            sys.executable,
            "-m",
            "dropscribe",
            "explain",
            "-c",
            str(setup.config_path),
            str(setup.inbox / "talk.wav"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        check=True,
    )
    assert "chunks: 2 of 4 done, cut at 29.5 s, 59.5 s, 89.5 s" in explained.stdout
    before = len(listening.uploads)
    listening.answer = tone_answer
    second = DaemonProcess(setup, command="once")
    assert second.wait(60) == 0
    (reused,) = second.named("chunks.reused")
    assert reused["done"] == 2
    again = listening.uploads[before:]
    assert len(again) == 2
    # The four chunks begin with the tones at 0, 30, 60 and 90 s; two were answered.
    answered = {u.tones[0][2] for u in listening.uploads[:2]}
    assert same_tones(
        sorted(u.tones[0][2] for u in again), sorted({300, 900, 1500, 2100} - answered)
    )
    placed = [hz for _, _, hz in TONES]
    srt = cues((setup.inbox / "talk.srt").read_text())
    assert same_tones([hertz(text)[0] for _, _, text in srt], placed)
    assert list((setup.state / "work").iterdir()) == []


def test_within_limits_file_is_sent_as_is_and_local_never_reencodes(tmp_path):
    """Re-encoding happens only for a reason: format, picture, bytes or duration."""
    from dropscribe.audio.probe import examine

    wav = make_wav(tmp_path / "a.wav", seconds=1.0)
    found = examine(wav)
    settings = FolderSettings(endpoint="e", model="whisper-1")
    openai = Endpoint(name="e", base_url="http://127.0.0.1:9")
    assert plan.reason(found, openai, settings, wav, wav.stat().st_size) is None
    small = Endpoint(name="e", base_url="http://127.0.0.1:9", max_upload_bytes=1000)
    assert "upload limit" in (plan.reason(found, small, settings, wav, wav.stat().st_size) or "")
    local = Endpoint(name="e", kind="local", max_concurrency=1, max_upload_bytes=1000)
    assert plan.reason(found, local, settings, wav, wav.stat().st_size) is None
    long = found.__class__("wav", "pcm_s16le", 2000.0, 1)
    gpt = FolderSettings(endpoint="e", model="gpt-4o-transcribe")
    assert "one request" in (plan.reason(long, openai, gpt, wav, wav.stat().st_size) or "")
    assert plan.reason(long, openai, settings, wav, wav.stat().st_size) is None  # whisper-1: no cap
    opus = tmp_path / "a.opus"
    opus.write_bytes(wav.read_bytes())
    assert ".opus" in (plan.reason(found, openai, settings, opus, opus.stat().st_size) or "")


def _part(text: str, segs: list[tuple[float, float, str]]) -> Transcript:
    return Transcript(
        text,
        "en",
        None,
        tuple({"id": n, "start": a, "end": b, "text": t} for n, (a, b, t) in enumerate(segs)),
    )


def test_stitch_drops_what_the_overlap_repeated_and_renumbers():
    """Segments ending inside what came before are dropped; ids and times follow the source."""
    first = _part("one two three", [(0.0, 4.0, " one two"), (4.0, 9.9, " three")])
    second = _part("three four", [(0.0, 0.45, " three"), (0.6, 5.0, " four")])
    spans = [split.Span(0.0, 10.0, 0.0), split.Span(9.5, 20.0, 10.0, pause=False)]
    whole = stitch.stitch(list(zip(spans, [first, second], strict=True)), 20.0)
    assert [s["text"].strip() for s in whole.segments] == ["one two", "three", "four"]
    assert [s["id"] for s in whole.segments] == [0, 1, 2]
    assert whole.segments[2]["start"] == pytest.approx(10.1)
    assert whole.text == "one two three four"


def test_stitch_joins_untimed_text_without_repeating_a_clipped_word():
    """json-only answers (gpt-4o) are joined; words repeated across a hard cut appear once."""
    spans = [
        split.Span(0.0, 10.0, 0.0),
        split.Span(9.5, 20.0, 10.0, pause=False),
        split.Span(19.5, 30.0, 20.0, pause=True),
    ]
    parts = [Transcript("Hello there, my"), Transcript("my friend. How"), Transcript("are you?")]
    whole = stitch.stitch(list(zip(spans, parts, strict=True)), 30.0)
    assert whole.text == "Hello there, my friend. How are you?"
    assert stitch.carried_prompt("Names: Ada.", "x " * 1000).startswith("Names: Ada. x")
    assert len(stitch.carried_prompt(None, "word " * 1000)) <= stitch.PROMPT_CHARS


def test_wav_header_probe_agrees_with_ffmpeg_and_falls_back_for_float_wav(tmp_path):
    """A PCM WAV is probed from its header (same duration FFmpeg reports); a float WAV,
    which the wave module cannot read, is still probed through PyAV."""
    from dropscribe.audio import probe

    pcm = make_wav(tmp_path / "pcm.wav", seconds=1.25)
    quick = probe.examine(pcm)
    slow = probe._probe(pcm, {})
    assert (quick.container, quick.codec, quick.duration) == ("wav", "pcm_s16le", 1.25)
    assert slow.duration == pytest.approx(quick.duration, abs=0.01)
    floats = write_tones(
        tmp_path / "float.wav", [(0.0, 1.0, 440)], 1.0, container="wav", codec="pcm_f32le"
    )
    assert probe.examine(floats).codec == "pcm_f32le"


def test_unusable_scratch_space_fails_the_run_not_the_recording(setup, listening, events):
    """When scratch audio cannot be written (here state_dir/work is a file), the recording
    stays in its inbox, unquarantined, with the reason recorded for the next try."""
    long_setup(setup, listening)
    setup.state.mkdir()
    (setup.state / "work").write_text("in the way")
    write_tones(setup.inbox / "talk.wav", TONES[:8], 40.0)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 1
    (failed,) = named(events, "audio.scratch_failed")
    assert failed["will_retry"] is True
    assert failed["error"].startswith("cannot write scratch audio")
    assert (setup.inbox / "talk.wav").exists()
    assert not (setup.inbox / "failed").exists()
    assert listening.uploads == []


def test_damaged_recording_is_transcribed_up_to_the_damage(setup, listening, events):
    """An mp3 damaged halfway is transcribed as far as it decodes, with a warning saying so."""
    setup.data["endpoints"]["local"].update(
        {"base_url": listening.base_url, "max_duration_seconds": 31}
    )
    source = write_tones(
        setup.inbox / "memo.mp3", TONES[:8], 40.0, container="mp3", codec="libmp3lame"
    )
    data = source.read_bytes()
    middle = len(data) // 2
    source.write_bytes(data[:middle] + bytes(2000) + data[middle + 2000 : len(data) * 4 // 5])
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0
    (warning,) = named(events, "audio.truncated")
    assert 10 < warning["seconds"] < 30
    heard = hertz((setup.inbox / "memo.txt").read_text())
    placed = [hz for _, _, hz in TONES[:8]]
    assert 2 <= len(heard) < 8
    assert same_tones(heard, placed[: len(heard)])
