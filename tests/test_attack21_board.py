"""attack21: the endpoint board (state_dir/endpoints.json) read back as it lay. A moment
no clock can show (``next_probe: 1e300`` or ``NaN``) was a traceback in ``status``; JSON
nested deep raised RecursionError there and in the worker whose upload changed an
endpoint's state; a FIFO at its name hung both. What is not a board is left out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import patience
from dropscribe.transcribe import board

if TYPE_CHECKING:
    from pathlib import Path

DEEP = '{"endpoints": ' + "[" * 100_000 + "]" * 100_000 + "}"
CORRUPT = {
    "far": '{"endpoints": {"local": {"state": "paused", "next_probe": 1e300}}}',
    "nan": '{"endpoints": {"local": {"state": "paused", "since": NaN, "next_probe": NaN}}}',
    "deep": DEEP,
    "types": '{"endpoints": {"local": {"state": ["paused"], "asked": 1, "status": true}}}',
}
HUGE = json.dumps({"endpoints": {"local": {"state": "paused", "reason": "x" * 2**21}}})


def status(setup: Any) -> dict[str, Any]:
    """``status --json`` on the setup's config (no ledger yet: the board is still read)."""
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "status", "--json", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=patience(60),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [endpoint] = json.loads(done.stdout)["endpoints"]
    return dict(endpoint)


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_status_reads_a_corrupt_board_without_a_traceback(setup: Any, kind: str) -> None:
    """A board out of range, nested deep or mistyped: status exits 0 and shows the endpoint without the values it cannot use."""
    setup.state.mkdir(mode=0o700)
    (setup.state / board.BOARD_NAME).write_text(CORRUPT[kind])
    shown = status(setup)
    assert shown["next_probe"] is None
    assert shown["state"] in {"paused", "unknown"}
    assert shown["asked"] is False


def test_status_is_not_held_by_a_fifo_at_the_boards_name(setup: Any) -> None:
    """A FIFO nobody writes at endpoints.json: status answers (it waited forever)."""
    setup.state.mkdir(mode=0o700)
    os.mkfifo(setup.state / board.BOARD_NAME)
    assert status(setup)["state"] == "unknown"


def test_a_board_over_a_mebibyte_is_not_read(tmp_path: Path) -> None:
    """A board of 2 MiB (no reason the daemon writes is over 300 characters) reads as
    none: status and the workers never hold a board of any size in memory."""
    (tmp_path / board.BOARD_NAME).write_text(HUGE)
    assert board.read(tmp_path) == {}


@pytest.mark.parametrize("kind", ["deep", "far", "nan"])
def test_a_state_change_rewrites_a_corrupt_board(tmp_path: Path, kind: str) -> None:
    """The daemon's side: an endpoint paused over a corrupt board raises nothing (the
    deep one raised RecursionError into the upload) and leaves a board that reads back."""
    (tmp_path / board.BOARD_NAME).write_text(CORRUPT[kind])
    board.Board(tmp_path).set("other", "paused", "HTTP 503", 503, 30.0)
    entries = board.read(tmp_path)
    assert entries["other"]["state"] == "paused"
    assert entries.get("local", {}).get("next_probe") is None
    written = (tmp_path / board.BOARD_NAME).read_text()
    json.loads(written, parse_constant=lambda c: pytest.fail(f"{c} written back"))
