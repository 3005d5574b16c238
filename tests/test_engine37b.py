"""The local engine's memory (issue 37): glibc's heaps are capped before the daemon's
threads first allocate, so the two batches at once share one heap."""

from __future__ import annotations

import threading

from dropscribe.transcribe import heap, local
from dropscribe.vocab.endpoints import Endpoint


class Libc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []

    def mallopt(self, what: int, value: int) -> int:
        self.calls.append((what, value, threading.current_thread().name))
        return 1


def test_making_the_engine_caps_the_heaps_before_any_model_loads(monkeypatch):
    """LocalEngine() itself caps glibc's heaps at one, in the thread that makes it (the
    daemon makes its engines before the threads that run files): no model is loaded."""
    libc = Libc()
    monkeypatch.setattr(heap, "_libc", lambda: libc)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    engine = local.LocalEngine(Endpoint(name="here", kind="local"))
    try:
        assert heap.ARENAS == 1
        assert libc.calls == [(heap.M_ARENA_MAX, 1, threading.current_thread().name)]
        assert engine._models == {}
    finally:
        engine.close()


def test_a_heap_limit_in_the_environment_wins_over_the_engine(monkeypatch):
    """With MALLOC_ARENA_MAX set by the user, making the engine leaves glibc alone."""
    libc = Libc()
    monkeypatch.setattr(heap, "_libc", lambda: libc)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    local.LocalEngine(Endpoint(name="here", kind="local")).close()
    assert libc.calls == []
