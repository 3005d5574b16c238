"""cutapi19: a recording cut short goes to an endpoint re-encoded from what it holds, never
as it is (a strict server, as the fake API listening to its uploads, refuses a cut FLAC's
broken last frame with HTTP 400), its length (budgets, progress) what it holds; every
track of a cut file carries the fact. Whole files beside them go as they are. The files
are real (PyAV), cut with ``truncate``, sent over a real socket to the fake API."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

import av
import pytest

from conftest import API_KEY, named, write_tones
from dropscribe.jobs import decide
from dropscribe.jobs.decide import Facts, How
from dropscribe.ledger import opening
from dropscribe.ops import progress
from dropscribe.service import Daemon
from fakeapi import FakeAPI, tone_answer
from test_short18 import SECONDS, TONES, cut_to_a_third
from test_tracks32 import RATE, tone

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow

KINDS = {
    "flac": {"container": "flac", "codec": "flac", "rate": 44100, "channels": 2},
    "webm": {"container": "webm", "codec": "libopus", "rate": 48000},
}
HELD = {"tone 300", "tone 400", "tone 500"}  # the tones wholly within a third of 30 s
LOST = {"tone 700", "tone 800", "tone 900", "tone 1000", "tone 1100", "tone 1200"}


@pytest.fixture
def strict(setup: Setup) -> Iterator[Setup]:
    """The fake API decodes every upload (a broken frame: HTTP 400) and answers its tones."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        setup.api = api
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        setup.data["defaults"]["formats"] = ["txt", "json", "srt"]
        yield setup


def run_once(setup: Setup) -> int:
    return Daemon(setup.load()).run(threading.Event(), once=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kept(setup: Setup, path: Path) -> object:
    """The ledger's transcript of ``path``: its ``cut_short``."""
    store = opening.existing(setup.load())
    assert store is not None
    try:
        row = store.file(path)
        assert row is not None
        job = store.job(row.key)
        assert job is not None
        assert job.result is not None
        return job.result.get("cut_short")
    finally:
        store.close()


def test_cut_flac_and_webm_go_re_encoded_to_a_strict_server_whole_ones_as_they_are(strict, events):
    """A cut FLAC (refused with 400 when sent as it is) and a cut WebM: each said once
    (audio.short), re-encoded (audio.reencoding, "cut short"), transcribed up to the cut
    with txt, json, srt written and the ledger's transcript saying cut_short; the whole
    FLAC and WebM beside them are uploaded as they are (their own bytes, no re-encoding)."""
    cut, whole = {}, {}
    for kind, how in KINDS.items():
        cut[kind] = cut_to_a_third(
            write_tones(strict.inbox / f"cut-{kind}.{kind}", TONES, SECONDS, **how)
        )
        whole[kind] = write_tones(strict.inbox / f"whole-{kind}.{kind}", TONES, SECONDS, **how)
    assert run_once(strict) == 0
    assert len(named(events, "file.done")) == 4
    assert not named(events, "file.failed")
    shorts = named(events, "audio.short")
    assert sorted(e["path"] for e in shorts) == sorted(str(p) for p in cut.values())
    reencoded = named(events, "audio.reencoding")
    assert sorted(e["path"] for e in reencoded) == sorted(str(p) for p in cut.values())
    assert all("cut short" in e["reason"] for e in reencoded)
    uploads = strict.api.uploads
    assert all(u.reply == "200" for u in uploads)
    assert not {u.filename for u in uploads} & {p.name for p in cut.values()}
    for kind, path in whole.items():
        (sent,) = [u for u in uploads if u.filename == path.name]
        assert sent.sha256 == sha256(path), kind  # the file as it is
        words = path.with_suffix(".txt").read_text()
        assert all(f"tone {300 + 100 * n}" in words for n in range(10)), kind
        assert "cut_short" not in json.loads(path.with_suffix(".json").read_text())
    for kind, path in cut.items():
        (short,) = [e for e in shorts if e["path"] == str(path)]
        assert short["declared_seconds"] == pytest.approx(SECONDS, abs=0.05)
        assert 9.0 < short["decoded_seconds"] < 11.0
        words = path.with_suffix(".txt").read_text()
        assert all(tone in words for tone in HELD), (kind, words)
        assert not any(tone in words for tone in LOST), (kind, words)
        said = {
            "declared_seconds": short["declared_seconds"],
            "decoded_seconds": short["decoded_seconds"],
        }
        assert json.loads(path.with_suffix(".json").read_text())["cut_short"] == said
        assert "tone 500" in path.with_suffix(".srt").read_text()
        assert kept(strict, path) == said


def test_a_cut_webm_is_budgeted_and_told_by_the_seconds_it_holds(strict, events, monkeypatch):
    """A WebM declaring 30 s and holding 10 s, on an endpoint with 20 s of budget a day:
    sent (not budget.reached), about 10 s reserved, and file.progress counts 10 s, not 30."""
    monkeypatch.setattr(progress, "INTERVAL", 0.05)
    strict.api.delay = 0.5  # the chunk's answer takes long enough to be told
    strict.data["endpoints"]["local"].update(price_per_hour=3600.0, budget={"per_day": 20.0})
    path = cut_to_a_third(write_tones(strict.inbox / "cut.webm", TONES, SECONDS, **KINDS["webm"]))
    assert run_once(strict) == 0
    assert not named(events, "budget.reached")
    assert len(named(events, "file.done")) == 1
    (short,) = named(events, "audio.short")
    with sqlite3.connect(strict.state / "ledger.sqlite3") as db:
        spent = float(db.execute("SELECT COALESCE(SUM(cost), 0) FROM spend").fetchone()[0])
    assert 9.0 < spent < 11.0  # a unit of money a second
    told = named(events, "file.progress")
    assert told
    assert {e["total_seconds"] for e in told} == {round(short["decoded_seconds"], 1)}
    assert path.with_suffix(".txt").read_text().strip()


def interleaved(path: Path, hertz: list[int], seconds: float) -> Path:
    """A Matroska file of one Opus stream per tone (``hertz``, from 0.5 s to 8 s), their
    packets interleaved as a recorder writes them (a cut cuts every stream)."""
    with av.open(str(path), "w", format="matroska") as out:
        made = []
        for n, pitch in enumerate(hertz):
            stream: Any = out.add_stream("libopus", rate=48000)
            stream.layout = "mono"
            stream.metadata["language"] = ("eng", "deu")[n]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
            made.append((stream, resampler, tone(pitch, 0.5, 8.0, seconds)))
        step = RATE // 10
        for first in range(0, round(seconds * RATE), step):
            for stream, resampler, pcm in made:
                block = pcm[None, first : first + step].copy()
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                frame.sample_rate, frame.pts = RATE, first
                for resampled in resampler.resample(frame):
                    resampled.pts = None
                    out.mux(stream.encode(resampled))
        for stream, _, _ in made:
            out.mux(stream.encode(None))
    return path


def test_every_track_of_a_cut_file_carries_the_fact(strict, events):
    """A two-track Matroska file cut to a third, audio_track: all: audio.short for each
    track's job, each track's json says cut_short; the first track goes re-encoded, the
    second as the whole FLAC made of it (what it holds: sent as it is)."""
    seconds = 30.0
    cut_to_a_third(interleaved(strict.inbox / "talk.mka", [440, 880], seconds))
    strict.data["defaults"]["audio_track"] = "all"
    assert run_once(strict) == 0
    (done,) = named(events, "file.done")
    assert done["tracks"] == [0, 1]
    shorts = named(events, "audio.short")
    assert sorted(e["track"] for e in shorts) == [0, 1]
    for short in shorts:
        assert short["declared_seconds"] == pytest.approx(seconds, abs=0.05)
        assert 1.0 < short["decoded_seconds"] < seconds / 2
    for language, hertz in (("en", 440), ("de", 880)):
        sidecar = json.loads((strict.inbox / f"talk.{language}.json").read_text())
        assert sidecar["cut_short"]["declared_seconds"] == pytest.approx(seconds, abs=0.05)
        assert f"tone {hertz}" in sidecar["text"]
    (reencoded,) = named(events, "audio.reencoding")
    assert reencoded["track"] == 0
    assert "talk.track1.flac" in {u.filename for u in strict.api.uploads}


def test_decide_re_encodes_a_cut_file_for_an_endpoint_and_not_for_the_local_engine():
    """decide: a cut file goes in chunks to a remote endpoint ("cut short"); the local
    engine decodes it whole; the same file whole goes whole."""
    facts = Facts(
        kind="openai",
        model="whisper-1",
        size=1000,
        extension="flac",
        accepted=True,
        upload_limit=25 * decide.MIB,
        duration=10.0,
        video=False,
        request_seconds=None,
    )
    assert decide.decide(facts).how is How.WHOLE
    plan = decide.decide(dataclasses.replace(facts, cut=True))
    assert plan.how is How.CHUNKS
    assert plan.reason is not None
    assert "cut short" in plan.reason
    local = dataclasses.replace(facts, cut=True, kind="local")
    assert decide.decide(local).how is How.WHOLE


def page_starts(data: bytes) -> list[int]:
    """Where each Ogg page of ``data`` starts, followed from the first."""
    starts, at = [], 0
    while at + 27 <= len(data) and data[at : at + 4] == b"OggS":
        starts.append(at)
        count = data[at + 26]
        at += 27 + count + sum(data[at + 27 : at + 27 + count])
    return starts


@pytest.mark.parametrize(
    "how",
    [
        {"container": "ogg", "codec": "libopus", "rate": 48000},
        {"container": "ogg", "codec": "flac", "rate": 16000},
    ],
    ids=["opus", "flac"],
)
def test_an_ogg_cut_exactly_at_a_pages_end_is_short(tmp_path, how):
    """Ogg Opus and Ogg FLAC cut at the page boundary nearest a third of their bytes: their
    last page is not marked as the stream's last (eos), so they are short (nothing
    declared, about 10 s held); the whole files, whose last page is marked, are not."""
    from dropscribe.audio import cut, probe

    whole = write_tones(tmp_path / "whole.ogg", TONES, SECONDS, **how)
    data = whole.read_bytes()
    assert cut.short(whole, probe.examine(whole)) is None
    assert data[page_starts(data)[-1] + 5] & 0x04  # what FFmpeg's writer ends with
    boundary = min(page_starts(data), key=lambda at: abs(at - len(data) // 3))
    paged = tmp_path / "paged.ogg"
    paged.write_bytes(data[:boundary])
    assert page_starts(paged.read_bytes())[-1] < boundary  # whole pages to its last byte
    short = cut.short(paged, probe.examine(paged))
    assert short is not None
    assert short.declared is None
    assert 8.0 < short.held < 12.0
