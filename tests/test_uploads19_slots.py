"""uploads19: a stop asked while chunks of a long recording wait for their endpoint's
upload slots starts no new upload. What is in flight finishes (its checkpoints kept), the
job is abandoned, and the next start sends only the chunks nobody answered. Through the
real ``dropscribe`` process and the fake API holding the uploads in flight."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, wait_for, write_tones
from fakeapi import FakeAPI, tone_answer

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

# 36 tones of 4 s, each followed by a 1 s pause: three minutes, six chunks of 30 s.
TONES = [(5.0 * n, 5.0 * n + 4.0, 300 + 60 * n) for n in range(36)]
SECONDS = 180.0
CHUNKS = 6
SLOTS = 2  # max_concurrency: two chunks in flight, two more encoded and waiting
FIRST = 1  # answered at once: the model's first request goes alone (it confirms the ask)


@pytest.fixture
def listening() -> Iterator[FakeAPI]:
    with FakeAPI(answer=tone_answer, listening=True) as server:
        yield server


def test_chunks_waiting_for_a_slot_are_not_sent_after_a_stop(
    setup: Any, listening: FakeAPI
) -> None:
    """SIGTERM with two chunks in flight and two waiting for the endpoint's slots: once the
    two answer, no POST starts; the job ends abandoned (exit 0), the chunks answered kept;
    the next start sends only the others and finishes the file once."""
    setup.data["endpoints"]["local"].update(
        {"base_url": listening.base_url, "max_upload_bytes": 300_000, "max_concurrency": SLOTS}
    )
    setup.data["defaults"].update({"chunk_seconds": 30, "formats": ["txt"]})
    released = threading.Event()

    def answer(upload: Any) -> Any:
        if len(listening.uploads) > FIRST:
            released.wait(30)  # in flight until the test lets them answer
        return tone_answer(upload)

    listening.answer = answer
    path = write_tones(setup.root / "talk.wav", TONES, SECONDS)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        path = path.rename(setup.inbox / path.name)
        daemon.wait_event("chunk.done")
        wait_for(lambda: len(listening.uploads) == FIRST + SLOTS, what="two chunks in flight")
        scratch = setup.state / "work"
        # the two after them encoded: their uploads wait for a slot
        wait_for(lambda: len(list(scratch.glob("*/000*"))) >= 2 * SLOTS, what="four encoded")
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon.stopping")
        released.set()  # the two in flight answer: their slots are free
        code = daemon.wait(timeout=30)
    finally:
        released.set()
        daemon.kill()
    kept = FIRST + SLOTS
    assert code == 0, daemon
    assert len(listening.uploads) == kept, [u.tones[:1] for u in listening.uploads]
    assert len(daemon.named("chunk.done")) == kept
    assert daemon.named("job.abandoned")
    assert not path.with_suffix(".txt").exists()
    answered = {u.tones[0][2] for u in listening.uploads}

    again = DaemonProcess(setup, command="once")
    assert again.wait(timeout=60) == 0, again
    (reused,) = again.named("chunks.reused")
    assert reused["done"] == kept
    sent = listening.uploads[kept:]
    assert len(sent) == CHUNKS - kept
    assert answered.isdisjoint(u.tones[0][2] for u in sent)
    assert [e["path"] for e in again.named("file.done")] == [str(path)]
    text = path.with_suffix(".txt").read_text()
    assert len(text.split("tone ")) - 1 == len(TONES), text
