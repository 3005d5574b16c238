"""review18: a stop whose ledger writes give up (grace18: another process holds the
ledger past shutdown_grace) after the transcript was paid for. The job ends abandoned,
not failed: no error said, nothing counted against the file, no promise of sidecars
"at the next rescan" from a daemon that is going; the next start does the file once,
its sidecars written once. Through the real ``dropscribe`` process, the real fake API,
and a real process holding the SQLite ledger in a write transaction."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience, write_tones
from dropscribe.vocab.config import STOP_MARGIN
from fakeapi import FakeAPI, tone_answer
from test_lock17_held import TRANSACTION, holding
from test_long import SECONDS, TONES, hertz, long_setup, same_tones

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

# shutdown_grace: below the ledger's 30-s wait, and long enough for the answers let go
# after the signal to come back within it on a busy machine (at 2 s, once, they came after
# it: the job was still uploading at the grace's end, daemon.abandoned, no job.abandoned;
# at 5 s, once, at a load of 17): the suite's patience with 5 s
GRACE = patience(5.0)
# The endpoint's timeout: an upload held until the signal never times out first, however
# slowly a busy machine brings the test there (10 s did: chunk 1 retried, no abandon).
HELD = 120


@pytest.fixture
def listening() -> Iterator[FakeAPI]:
    with FakeAPI(answer=tone_answer, listening=True) as server:
        yield server


def stopped_while_held(setup: Any, api: FakeAPI, daemon: DaemonProcess, uploads: int) -> int:
    """SIGTERM once ``uploads`` requests are under way (held at the fake API's gate), the
    ledger then held in another process's write transaction; the answers let go after
    the signal, so what follows them waits for the ledger until the grace is over.
    Returns the daemon's exit code."""
    assert api.wait_waiting(uploads, timeout=60)  # decoding and encoding chunks on a busy machine
    with holding(setup.state / "ledger.sqlite3", TRANSACTION):
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon.stopping")
        api.release()
        return daemon.wait(timeout=GRACE + STOP_MARGIN)


def said_as_errors(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [e for e in daemon.events if e.get("level") == "error"]


@pytest.mark.parametrize("processes", [1, 2])
def test_a_paid_transcript_the_ledger_gave_up_on_is_abandoned_and_done_once_at_the_next_start(
    setup: Any, processes: int
) -> None:
    """The upload answered during the stop, its transcript's write given up at the grace
    (the ledger held elsewhere): job.abandoned, nothing failed or said as an error; the
    next start uploads it again (the ledger never had it) and writes its sidecar once."""
    setup.data["shutdown_grace"] = GRACE
    setup.data["endpoints"]["local"]["timeout"] = HELD
    setup.data["workers"] = processes
    setup.data["processes"] = processes
    path = setup.inbox / "a.wav"
    setup.api.hold()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(path)
        code = stopped_while_held(setup, setup.api, daemon, 1)
    finally:
        setup.api.release()
        daemon.kill()
    assert code == 0, daemon
    assert daemon.named("job.abandoned"), daemon
    assert said_as_errors(daemon) == [], daemon
    (stopped,) = daemon.named("daemon.stopped")
    assert stopped["failed"] == 0, stopped
    assert not path.with_suffix(".txt").exists()
    again = DaemonProcess(setup, command="once")
    assert again.wait(timeout=60) == 0, again
    assert len(again.named("file.done")) == 1
    assert path.with_suffix(".txt").read_text() == "transcript of a.wav\n"
    assert sorted(p.name for p in setup.inbox.glob("*.txt")) == ["a.txt"]
    assert len(setup.api.uploads) == 2  # the first answer was never the ledger's


def test_a_chunk_checkpoint_given_up_abandons_the_long_recording(
    setup: Any, listening: FakeAPI
) -> None:
    """Two chunks of a long recording answered during the stop, their checkpoints given
    up at the grace: the job is abandoned (no error said, no chunk said done); the next
    start sends every chunk (none was kept) and stitches the whole recording."""
    long_setup(setup, listening, max_concurrency=2, timeout=HELD)
    setup.data["shutdown_grace"] = GRACE
    listening.hold()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        write_tones(setup.inbox / "talk.wav", TONES, SECONDS)
        code = stopped_while_held(setup, listening, daemon, 2)
    finally:
        listening.release()
        daemon.kill()
    assert code == 0, daemon
    assert daemon.named("job.abandoned"), daemon
    assert said_as_errors(daemon) == [], daemon
    assert not daemon.named("chunk.done")  # said only once its checkpoint is kept
    # a chunk waiting for the endpoint's slot when the stop came may take it as the first
    # two end (the uploader's slot, not the ledger): two, three or all four were sent
    sent = len(listening.uploads)
    assert 2 <= sent <= 4, sent
    again = DaemonProcess(setup, command="once")
    assert again.wait(timeout=60) == 0, again
    assert not again.named("chunks.reused")
    assert len(listening.uploads) == sent + 4
    text = (setup.inbox / "talk.txt").read_text()
    assert same_tones(hertz(text), [hz for _, _, hz in TONES])
