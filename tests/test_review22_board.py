"""review22: a pause read back from the board (session 22, ``Board.other``) is heeded
only as long as this daemon could pause an endpoint itself, and only if this run wrote it."""

from __future__ import annotations

import json
import os
import time

from dropscribe.ops.metrics import Metrics
from dropscribe.transcribe import board as boardmod
from dropscribe.transcribe.backoff import MAX_RETRY_AFTER
from dropscribe.transcribe.board import Board
from dropscribe.transcribe.health import Health
from dropscribe.vocab.endpoints import Endpoint

ENDPOINT = Endpoint(name="e", base_url="http://api.example/v1")


def _another_process_paused(state_dir, next_probe: float, **more: object) -> None:
    """The board as another worker process of this run left it: "e" paused."""
    Board(state_dir).set("e", "paused", "down", 503, 60.0)
    raw = json.loads((state_dir / "endpoints.json").read_text())
    raw["endpoints"]["e"].update(pid=os.getpid() + 1, next_probe=next_probe, **more)
    (state_dir / "endpoints.json").write_text(json.dumps(raw))


def test_a_pause_on_the_board_until_the_year_9999_is_heeded_an_hour_at_most(tmp_path):
    """A board entry (a clock set wrong when it was written, a hand) pausing "e" until
    9999 holds this process's uploads no longer than the longest pause it would make,
    once: then the endpoint is probed, and a probe answered ends the pause."""
    _another_process_paused(tmp_path, boardmod.LATEST)
    now = [0.0]
    health = Health({"e": ENDPOINT}, Metrics(), lambda: now[0], Board(tmp_path))
    wait, _, _ = health.breaker("e")
    assert 0 < wait <= MAX_RETRY_AFTER  # an hour: a 429's longest, 4 x the breaker's cap
    now[0] += wait
    assert health.breaker("e")[0] == 0.0, "then probed, the entry not heeded again"
    health.succeeded("e")
    assert health.breaker("e")[0] == 0.0, "and, the probe answered, not paused by it again"


def test_a_pause_left_by_an_earlier_daemon_of_the_same_pid_is_not_heeded(tmp_path):
    """In a container the daemon has the same pid at every start: a pause a worker
    process of the daemon before a restart left neither holds uploads nor stays shown."""
    _another_process_paused(tmp_path, time.time() + 600, born=1)  # a main started at boot
    health = Health({"e": ENDPOINT}, Metrics(), lambda: 0.0, Board(tmp_path))
    assert boardmod.read(tmp_path)["e"]["state"] == "ok"
    assert health.breaker("e")[0] == 0.0


def test_a_pause_another_process_of_this_run_wrote_is_still_heeded(tmp_path):
    """The run is told by its main process's pid and start: a sibling's pause holds."""
    _another_process_paused(tmp_path, time.time() + 600)
    health = Health({"e": ENDPOINT}, Metrics(), lambda: 0.0, Board(tmp_path))
    assert boardmod.read(tmp_path)["e"]["state"] == "paused"
    assert health.breaker("e")[0] > 500
