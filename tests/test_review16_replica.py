"""review16: the local engine's last resort when its seeded replica cannot be loaded (no
memory for a second copy of the model, its folder gone): the piece is still decoded, by
the shared model, with a replica.failed warning; the file does not fail for it."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from dropscribe.transcribe import redo
from dropscribe.transcribe.local import LocalEngine
from dropscribe.vocab.endpoints import Endpoint
from test_seed16 import SAID, speech


def test_a_replica_that_cannot_load_leaves_the_last_resort_to_the_shared_model(
    tmp_path, monkeypatch
):
    """redo.again on real speech with the real tiny.en as the engine loads it, the
    fallback at its hottest temperature, every replica's load failing as CTranslate2's
    does out of GPU memory: words come back (not a RuntimeError, which failed the file),
    replica.failed says why and what was done, and the sampling lock is free after."""

    def no_memory(_: redo.Replica) -> Any:
        raise RuntimeError("CUDA failed with error out of memory")

    monkeypatch.setattr(redo.Replica, "load", no_memory)
    monkeypatch.setattr(redo, "FALLBACK", (1.0,))
    said = speech(tmp_path, "said", SAID)
    engine = LocalEngine(Endpoint(name="here", kind="local"))
    model = engine._model("tiny.en")
    try:
        with capture_logs() as logs:
            found = redo.again(model, said, 0.0, {"language": "en", "best_of": 1}, iter)
    finally:
        engine._done()
        engine.close()
    assert " ".join(s.text for _, s in found).strip(), "the last resort heard nothing"
    failed = [e for e in logs if e["event"] == "replica.failed"]
    assert failed
    assert failed[0]["error"] == "RuntimeError: CUDA failed with error out of memory"
    assert failed[0]["action"].startswith("sampled from the shared model")
    assert not redo._SAMPLING.locked()
