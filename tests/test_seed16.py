"""The local engine's last resort gives the same words every run (seed16): its samples
come from a generator seeded for the decode, not from whichever worker thread of the
shared model took the call, with whatever it sampled before."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from structlog.testing import capture_logs

from dropscribe.audio.transcode import RATE, Samples, floats
from dropscribe.transcribe import redo
from dropscribe.transcribe.local import LocalEngine
from dropscribe.vocab.endpoints import Endpoint
from test_local37 import talk

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SAID = "Anna reviewed the budget for next year on Monday morning, and Ben postponed the plan."
OTHER = "Carla discussed the contract with the supplier after the break."


def speech(tmp_path, name: str, text: str) -> npt.NDArray[np.float32]:
    """A few seconds of real espeak-ng speech, as the engine's 16 kHz floats."""
    return floats(Samples(talk(tmp_path / f"{name}.wav", [text], speed=160, pause=0.3)))


def last_resort(model: Any, samples: npt.NDArray[np.float32]) -> tuple[list[Any], list[Any]]:
    """What redo.again makes of a short piece: the segments kept and the warnings."""
    with capture_logs() as logs:
        found = redo.again(model, samples, 0.0, {"language": "en", "best_of": 1}, iter)
    kept = [(at, s.text, s.start, s.end, round(s.avg_logprob, 4)) for at, s in found]
    return kept, [e for e in logs if e["event"] == "speech.unheard"]


def sample_elsewhere(model: Any, samples: npt.NDArray[np.float32], rounds: range) -> None:
    """The shared model's worker threads sample (as other files would): four decodes at
    once, more than its two workers, each of a clip 50 ms shorter than the one before (so
    that no two draw alike and no two workers end in the same state)."""
    together = threading.Barrier(len(rounds))

    def one(n: int) -> None:
        together.wait(timeout=60)
        clip = samples[: len(samples) - n * RATE // 20]
        found, _ = model.transcribe(clip, temperature=1.0, best_of=1, vad_filter=False)
        list(found)

    threads = [threading.Thread(target=one, args=(n,), name=f"seed16-{n}") for n in rounds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_last_resort_gives_the_same_words_whatever_the_model_sampled_before(
    tmp_path, monkeypatch
):
    """redo.again on a 5-s piece with the real tiny.en as the engine loads it (two
    workers), the fallback at its hottest temperature with one sample (so the words are
    the samples'): the same words, times and scores twice, with the shared model's
    worker threads sampling other speech before each."""
    said, other = speech(tmp_path, "said", SAID), speech(tmp_path, "other", OTHER)
    monkeypatch.setattr(redo, "FALLBACK", (1.0,))
    engine = LocalEngine(Endpoint(name="here", kind="local"))
    model = engine._model("tiny.en")
    try:
        sample_elsewhere(model, other, range(4))
        first = last_resort(model, said)
        sample_elsewhere(model, other, range(4, 8))
        second = last_resort(model, said)
    finally:
        engine._done()
        engine.close()
    assert first[0] or first[1], "the last resort heard nothing and warned of nothing"
    assert second == first


class Shared:
    """A CTranslate2 model standing in, noting the options of each generate call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[dict[str, Any]] = []
        self.is_multilingual = False

    def generate(self, *_: Any, **options: Any) -> list[str]:
        self.calls.append(options)
        return [self.name]


BEAM = {"beam_size": 5, "patience": 1}
SAMPLE = {"beam_size": 1, "num_hypotheses": 5, "sampling_topk": 0, "sampling_temperature": 0.2}


def test_only_sampling_calls_go_to_a_replica_loaded_once_a_decode_and_freed_after(
    monkeypatch,
):
    """Seeded: beam search runs on the shared model and loads nothing; a decode's sampling
    calls run on one replica loaded at the first of them; closing frees it (and the lock
    that keeps replicas one at a time), so the next decode starts from a new one."""
    loaded: list[Shared] = []

    def load(_: redo.Replica) -> Shared:
        loaded.append(Shared(f"replica {len(loaded)}"))
        return loaded[-1]

    monkeypatch.setattr(redo.Replica, "load", load)
    shared = Shared("shared")
    replica = redo.Replica("tiny.en", "cpu", "int8", 1)
    seeded = redo.Seeded(shared, replica)
    assert seeded.is_multilingual is False  # everything else is the shared model's
    assert seeded.generate("encoded", [[1]], **BEAM) == ["shared"]
    assert not loaded
    assert not redo._SAMPLING.locked()
    assert seeded.generate("encoded", [[1]], **SAMPLE) == ["replica 0"]
    assert seeded.generate("encoded", [[1]], **{**SAMPLE, "sampling_temperature": 0.4}) == [
        "replica 0"
    ]
    assert redo._SAMPLING.locked()
    seeded.close()
    assert not redo._SAMPLING.locked()
    again = redo.Seeded(shared, replica)
    assert again.generate("encoded", [[1]], **SAMPLE) == ["replica 1"]
    again.close()
    assert shared.calls == [BEAM]
    assert [len(r.calls) for r in loaded] == [2, 1]


def test_a_replica_that_cannot_load_leaves_the_lock_free(monkeypatch):
    """Seeded: a replica whose load fails leaves the sampling to the shared model
    (review16), and the next decode can load one."""

    def broken(_: redo.Replica) -> Any:
        raise RuntimeError("no such model")

    monkeypatch.setattr(redo.Replica, "load", broken)
    seeded = redo.Seeded(Shared("shared"), redo.Replica("tiny.en", "cpu", "int8", 1))
    assert seeded.generate("encoded", [[1]], **SAMPLE) == ["shared"]
    assert not redo._SAMPLING.locked()
    seeded.close()
    assert not redo._SAMPLING.locked()


def test_a_model_the_engine_did_not_load_is_decoded_as_it_is():
    """redo.seeded: a model without a replica to load (a stand-in) is used unchanged."""
    model = SimpleNamespace(transcribe=None)
    with redo.seeded(model) as view:
        assert view is model
