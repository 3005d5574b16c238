"""faster-whisper's own path (`vad: false`, or `batch_size: 1`) samples from a generator
seeded for the decode too, as the batched path's last resort does (seed16): the same
recording gives the same words every run, whatever the shared model sampled before."""

from __future__ import annotations

from dropscribe.transcribe.local import LocalEngine
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings
from test_local37 import talk
from test_seed16 import OTHER, SAID, sample_elsewhere, speech


def test_the_sequential_path_samples_the_same_words_every_run(tmp_path):
    """LocalEngine with `vad: false` and `temperature: 1` (every window sampled, one
    sample each): the same text, segments and words twice, with the shared model's
    worker threads sampling other speech before each (on main the two runs differ)."""
    wav = talk(tmp_path / "said.wav", [SAID, OTHER], speed=160, pause=0.3)
    other = speech(tmp_path, "other", OTHER)
    engine = LocalEngine(Endpoint(name="here", kind="local", vad=False))
    settings = FolderSettings(endpoint="here", model="tiny.en", temperature=1.0, formats=["srt"])
    model = engine._model("tiny.en")
    runs = []
    try:
        for rounds in (range(4), range(4, 8), range(8, 12)):
            sample_elsewhere(model, other, rounds)
            runs.append(engine.transcribe(wav, settings))
    finally:
        engine._done()
        engine.close()
    assert runs[0].text.strip(), "the sampled decode heard nothing"
    assert runs[1] == runs[0]
    assert runs[2] == runs[0]
