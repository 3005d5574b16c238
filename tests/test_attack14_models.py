"""attack14: a model folder a config names (``align_model:``) that another user can
write to, under attack through the real dropscribe process: a FIFO planted as its
``model.bin`` must end the job with a reason, never hold the worker (and every other
timing job, which waits for the loading lock) for ever."""

from __future__ import annotations

import os

import pytest

from conftest import API_KEY, DaemonProcess, make_wav
from fakeapi import FakeAPI

pytestmark = pytest.mark.slow


def test_a_fifo_planted_as_the_align_models_weights_never_holds_the_worker(setup):
    """align_model names a folder whose model.bin is a FIFO nobody writes: timing.failed
    names it and the file goes as short spans (as for any model that cannot load)."""
    folder = setup.root / "align-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "vocabulary.txt").write_text("a\nb\n")
    os.mkfifo(folder / "model.bin")
    recording = make_wav(setup.inbox / "call.wav", seconds=1.0)
    with FakeAPI(api_key=API_KEY, answer=lambda _u: {"text": "hello there"}) as api:
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        setup.data["defaults"].update(
            model="gpt-transcribe", formats=["txt", "srt"], align_model=str(folder)
        )
        proc = DaemonProcess(setup, command="once")
        try:
            assert proc.wait(60) == 0
        finally:
            proc.kill()
    (failed,) = proc.named("timing.failed")
    assert "model.bin: is a FIFO, not a regular file" in failed["error"]
    assert recording.with_suffix(".srt").exists()


def test_a_fifo_planted_as_the_local_engines_weights_never_holds_the_worker(setup):
    """kind: local whose model folder's model.bin is a FIFO nobody writes: the daemon
    (once) ends, the file is left in place, and an event names the FIFO."""
    folder = setup.root / "local-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "vocabulary.txt").write_text("a\nb\n")
    os.mkfifo(folder / "model.bin")
    recording = make_wav(setup.inbox / "call.wav", seconds=1.0)
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"].update(endpoint="here", model=str(folder))
    proc = DaemonProcess(setup, command="once")
    try:
        proc.wait(60)
    finally:
        proc.kill()
    said = [e for e in proc.events if "model.bin: is a FIFO, not a regular file" in str(e)]
    assert said, [e.get("event") for e in proc.events]
    assert recording.exists()
