"""The local engine's speed and words (issue 37): the VAD hears a whole window at once,
as faster-whisper's pipeline hears a whole file, and on a CPU a batch runs on each core
at once, in the recording's order."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import structlog

from conftest import make_wav
from dropscribe.transcribe import batched, local, schedule
from dropscribe.vocab.endpoints import Endpoint


def test_the_vad_hears_a_whole_window_at_once(tmp_path, monkeypatch):
    """A 120-s window goes through Silero in one call (before: four 30-s slices, each
    padded and cut at its edges, which cost 2.3 points of recall on the paragraphs)."""
    import faster_whisper.vad

    heard: list[int] = []

    def vad(audio, options):
        heard.append(len(audio))
        return [{"start": 16000, "end": len(audio) - 16000}]

    monkeypatch.setattr(faster_whisper.vad, "get_speech_timestamps", vad)
    windows = batched.Windows(make_wav(tmp_path / "x.wav", 1.0))
    pieces = windows._pieces(np.zeros(batched.WINDOW_SECONDS * 16000, dtype=np.int16))
    assert heard == [batched.WINDOW_SECONDS * 16000]
    assert sum(b - a for piece in pieces for a, b in piece) == (batched.WINDOW_SECONDS - 2) * 16000


def test_batches_run_side_by_side_and_come_back_in_order():
    """``in_order`` with two workers: two items are worked on at once (each waits for
    the other to start), the results come in the items' order, and each worker logs
    with the caller's bound fields."""
    both = threading.Barrier(2, timeout=10)
    seen: list[object] = []

    def work(n: int) -> int:
        if n < 2:
            both.wait()  # fails unless items 0 and 1 run at the same time
        seen.append(structlog.contextvars.get_contextvars().get("file"))
        return n * 10

    with structlog.contextvars.bound_contextvars(file="talk.wav"):
        assert list(schedule.in_order(work, range(5), 2)) == [0, 10, 20, 30, 40]
    assert seen == ["talk.wav"] * 5
    assert list(schedule.in_order(work, [], 2)) == []
    assert list(schedule.in_order(lambda n: n + 1, range(3), 1)) == [1, 2, 3]


def test_an_error_in_one_batch_ends_the_run_and_starts_no_more():
    """An error (or the daemon stopping) in one batch comes out of ``in_order``, and the
    batches not yet started never run."""
    ran: list[int] = []

    def work(n: int) -> int:
        ran.append(n)
        if n == 1:
            raise RuntimeError("bad batch")
        return n

    with pytest.raises(RuntimeError, match="bad batch"):
        list(schedule.in_order(work, range(10), 2))
    assert max(ran) <= 3


def test_threads_and_workers_follow_the_cores_and_the_settings(monkeypatch):
    """``cpu_threads: 0`` on a two-core CPU: two batches at once, one thread each; on
    eight cores, two of four threads. A ``cpu_threads`` set, a GPU or the low-memory
    setting: one batch at a time with the threads as set (0: CTranslate2's own)."""
    monkeypatch.delenv("DROPSCRIBE_HEAP", raising=False)
    auto = Endpoint(name="here", kind="local")
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda _: {0, 1})
    assert local.threads_of(auto, "cpu") == (1, 2)
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda _: set(range(8)))
    assert local.threads_of(auto, "cpu") == (4, 2)
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda _: {0})
    assert local.threads_of(auto, "cpu") == (1, 1)
    assert local.threads_of(Endpoint(name="here", kind="local", cpu_threads=3), "cpu") == (3, 1)
    assert local.threads_of(auto, "cuda") == (0, 1)
    monkeypatch.setenv("DROPSCRIBE_HEAP", "small")
    assert local.threads_of(auto, "cpu") == (0, 1)


def test_the_engine_threads_share_few_heaps_unless_the_user_says_otherwise(monkeypatch):
    """before_loading() caps glibc's heaps at ARENAS (each thread of two batches at once
    filled one of its own), whatever the low-memory setting; a MALLOC_ARENA_MAX set in
    the environment wins."""
    from dropscribe.transcribe import heap

    calls = []

    class Libc:
        def mallopt(self, what, value):
            calls.append((what, value))
            return 1

    monkeypatch.setattr(heap, "_libc", Libc)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("DROPSCRIBE_HEAP", raising=False)
    heap.before_loading()
    assert calls == [(heap.M_ARENA_MAX, heap.ARENAS)]
    calls.clear()
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    heap.before_loading()
    assert calls == []
