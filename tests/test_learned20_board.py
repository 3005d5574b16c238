"""learned20: the endpoint board (state_dir/endpoints.json, whose reasons may quote a
server's answer) was written to a temporary file under the umask, through whatever
link sat at its name, chmodded 0600 only afterwards and renamed unsynced. It is now
created 0600 (O_EXCL, O_NOFOLLOW) and on disk before the rename."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from dropscribe.transcribe import board

if TYPE_CHECKING:
    from pathlib import Path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.usefixtures("umask_000")
def test_a_link_at_the_boards_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """Under umask 000, a link planted at the temporary name leaves its target as it
    was; the board is 0600 and read back."""
    state = tmp_path / "state"
    state.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("mine")
    victim.chmod(0o644)
    (state / f".{board.BOARD_NAME}.{os.getpid()}").symlink_to(victim)
    board.Board(state).start(["local"])
    assert (victim.read_text(), mode(victim)) == ("mine", 0o644)
    assert mode(state / board.BOARD_NAME) == 0o600
    assert board.read(state)["local"]["state"] == "ok"
    assert sorted(p.name for p in state.iterdir()) == [board.BOARD_NAME, "endpoints.lock"]


@pytest.mark.usefixtures("umask_000")
def test_the_board_is_private_and_synced_before_it_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under umask 000 the temporary file is 0600 when its bytes are synced, and it is
    synced before it replaces the board."""
    synced: list[tuple[int, str]] = []
    fsync = os.fsync

    def watched(fd: int) -> None:
        shown = board.read(tmp_path).get("local", {}).get("state", "")
        synced.append((stat.S_IMODE(os.fstat(fd).st_mode), shown))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", watched)
    board.Board(tmp_path).start(["local"])
    board.Board(tmp_path).set("local", "paused", "HTTP 503")
    assert synced == [(0o600, ""), (0o600, "ok")]
    assert board.read(tmp_path)["local"]["state"] == "paused"
