"""The local engine keeps every core busy (issue 37): pieces made in a thread of their own,
every core started at once, the tail shared out evenly, and each batch prompted with what
was said before it, the same every run."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import structlog

from dropscribe.transcribe import batchpass, schedule


def test_the_first_batches_go_at_once_and_the_tail_is_shared_out_evenly():
    """Four a batch, two at once: the first two batches go as soon as they are full (the
    first after exactly four pieces were made); the last eight or fewer pieces are split
    evenly over the two (21 pieces: 4 4 4 4 3 2, not 4 4 4 4 4 1)."""
    made: list[int] = []

    def pieces(n: int):
        for k in range(n):
            made.append(k)
            yield k

    queue = schedule.batches(pieces(21), 4, 2)
    assert next(queue) == [0, 1, 2, 3]
    assert made == [0, 1, 2, 3]
    assert [len(b) for b in queue] == [4, 4, 4, 3, 2]
    assert [len(b) for b in schedule.batches(range(15), 4, 2)] == [4, 4, 4, 3]
    assert [len(b) for b in schedule.batches(range(3), 4, 2)] == [2, 1]
    assert [len(b) for b in schedule.batches(range(9), 4, 1)] == [4, 4, 1]
    assert [n for b in schedule.batches(range(50), 4, 2) for n in b] == list(range(50))


def test_pieces_are_made_in_a_thread_of_their_own_with_the_callers_log_fields():
    """``ahead`` makes the items in another thread (bound log fields kept), in order."""
    threads: set[str] = set()
    fields: list[object] = []

    def items():
        for n in range(5):
            threads.add(threading.current_thread().name)
            fields.append(structlog.contextvars.get_contextvars().get("file"))
            yield n

    with structlog.contextvars.bound_contextvars(file="talk.wav"):
        assert list(schedule.ahead(items(), 2)) == [0, 1, 2, 3, 4]
    assert threads == {"dropscribe-pieces"}
    assert fields == ["talk.wav"] * 5


def test_an_error_making_pieces_comes_out_where_they_are_used():
    """The producer's exception is raised in the consumer, after the items before it."""

    def items():
        yield 1
        raise OSError("damaged")

    got: list[int] = []
    with pytest.raises(OSError, match="damaged"):
        got.extend(schedule.ahead(items(), 2))
    assert got == [1]


def test_a_consumer_that_stops_early_stops_the_thread_making_pieces():
    """Closing ``ahead`` (a batch failed, the daemon stops) ends its thread: no thread is
    left making pieces nobody reads."""
    made: list[int] = []

    def endless():
        n = 0
        while True:
            made.append(n)
            yield n
            n += 1

    pieces = schedule.ahead(endless(), 2)
    assert next(pieces) == 0
    pieces.close()
    assert not [t for t in threading.enumerate() if t.name == "dropscribe-pieces"]
    assert len(made) <= 4


def test_a_batch_is_prompted_with_what_the_batches_done_before_it_said():
    """Batch k hears the last words of batches 0 .. k - 2 (always done when it starts,
    whether one or two run at once), after the folder's own prompt; nothing before."""
    said = batchpass.Said("Glossary: Greta.", workers=2)
    assert said.before(0) == "Glossary: Greta."
    assert said.before(1) == "Glossary: Greta."
    said.heard(0, [(0.0, SimpleNamespace(text=" Greta reviewed the budget."))])
    said.heard(1, [(0.0, SimpleNamespace(text=" Ben approved it."))])
    assert said.before(2) == "Glossary: Greta. Greta reviewed the budget."
    assert said.before(3) == "Glossary: Greta. Greta reviewed the budget. Ben approved it."
    long = batchpass.Said(None, workers=1)
    assert long.before(0) is None
    long.heard(0, [(0.0, SimpleNamespace(text=" ".join(f"w{n}" for n in range(100))))])
    assert long.before(1) is None  # one worker hears what two would: the same transcript
    prompt = long.before(2)
    assert prompt is not None
    assert prompt.split() == [f"w{n}" for n in range(100 - batchpass.PROMPT_WORDS, 100)]


def test_an_english_only_model_starts_every_core_at_once(tmp_path, monkeypatch):
    """With an English-only model nothing waits for a first batch to find the language:
    the first two batches run at the same time (each waits for the other to start), and
    every batch is asked in English with the prompt of what came before it."""
    both = threading.Barrier(2, timeout=20)
    asked: list[tuple[str | None, str | None]] = []

    class Windows:
        def __init__(self, path):
            self.samples = SimpleNamespace(count=16000 * 60, truncated=None)

        def __iter__(self):
            for n in range(12):
                yield SimpleNamespace(
                    n=n, places=[float(n)], samples=[0.0] * 16000, place=lambda at, **_: at
                )

    def decoded(model, pieces, options, batch, drain):
        if pieces[0].n < 8:
            both.wait()
        asked.append((options["language"], options["initial_prompt"]))
        return [[(0.0, SimpleNamespace(text=f" piece{p.n}", words=None))] for p in pieces], "en"

    monkeypatch.setattr(batchpass, "Windows", Windows)
    monkeypatch.setattr(batchpass, "decoded", decoded)
    monkeypatch.setattr(batchpass, "placed", lambda piece, at, s: s)
    monkeypatch.setattr(batchpass.redo, "checked", lambda model, piece, said, o, d: said)
    model = SimpleNamespace(model=SimpleNamespace(is_multilingual=False), dropscribe_workers=2)
    options = {"language": None, "initial_prompt": None}
    found, language, seconds = batchpass.transcribed(model, tmp_path / "x.wav", 4, options, iter)
    assert [s.text for _, s in found] == [f" piece{n}" for n in range(12)]
    assert (language, seconds) == ("en", 60.0)
    assert all(lang == "en" for lang, _ in asked)
    first_four = " ".join(f"piece{n}" for n in range(4))
    assert {prompt for _, prompt in asked} == {
        None,
        first_four,
        " ".join(f"piece{n}" for n in range(8)),
    }


def test_the_low_memory_setting_decodes_two_pieces_at_once_between_the_pieces_made(
    tmp_path, monkeypatch
):
    """``DROPSCRIBE_HEAP=small``: batches of two on a CPU (the beam search over four is
    the peak), and the pieces made in the caller's thread, between batches, so the VAD's
    buffers never add to a batch's; a batch_size set in the config wins."""
    from dropscribe.transcribe import local
    from dropscribe.vocab.endpoints import Endpoint

    monkeypatch.setenv("DROPSCRIBE_HEAP", "small")
    assert local.batch_of(Endpoint(name="here", kind="local"), "cpu") == 2
    assert local.batch_of(Endpoint(name="here", kind="local", batch_size=6), "cpu") == 6
    threads: set[str] = set()

    class Windows:
        def __init__(self, path):
            self.samples = SimpleNamespace(count=16000, truncated=None)

        def __iter__(self):
            for n in range(5):
                threads.add(threading.current_thread().name)
                yield SimpleNamespace(
                    n=n, places=[float(n)], samples=[0.0] * 16000, place=lambda at, **_: at
                )

    def decoded(model, pieces, options, batch, drain):
        return [[(0.0, SimpleNamespace(text=f" piece{p.n}", words=None))] for p in pieces], "en"

    monkeypatch.setattr(batchpass, "Windows", Windows)
    monkeypatch.setattr(batchpass, "decoded", decoded)
    monkeypatch.setattr(batchpass, "placed", lambda piece, at, s: s)
    monkeypatch.setattr(batchpass.redo, "checked", lambda model, piece, said, o, d: said)
    model = SimpleNamespace(model=SimpleNamespace(is_multilingual=False), dropscribe_workers=1)
    options = {"language": "en", "initial_prompt": None}
    found, _, _ = batchpass.transcribed(model, tmp_path / "x.wav", 2, options, iter)
    assert [s.text for _, s in found] == [f" piece{n}" for n in range(5)]
    assert threads == {threading.current_thread().name}
