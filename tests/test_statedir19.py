"""A state_dir that is an inbox is refused before anything is made or tightened there
(attack19): the daemon makes its state_dir and everything directly in it private, and had
closed the recordings (0600) to those who share them. One that holds an inbox, or lies
inside one, is a check-config warning, and the way into the inbox is left open."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from dropscribe.config import preflight
from dropscribe.loading import checked
from test_config import ENV, MINIMAL, run_cli

if TYPE_CHECKING:
    from pathlib import Path


def config(tmp_path: Path, state: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL + f"state_dir: {state}\n")
    return path


def test_run_refuses_a_state_dir_that_is_the_inbox_and_leaves_the_recordings_as_they_were(
    tmp_path: Path,
) -> None:
    """dropscribe once with state_dir: the inbox: exit 2 naming both and the fix; the
    recording keeps its 0644 and the inbox its 0755, no lock file is made there."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(mode=0o755)
    inbox.chmod(0o755)
    recording = inbox / "a.wav"
    recording.write_bytes(b"RIFF")
    recording.chmod(0o644)
    done = run_cli("once", "-c", str(config(tmp_path, inbox)), env={"PATH": "/usr/bin:/bin", **ENV})
    assert done.returncode == 2, done.stderr
    assert f"state_dir {inbox} is inbox {inbox} itself" in done.stderr
    assert "give state_dir a folder of its own" in done.stderr
    assert stat.S_IMODE(recording.stat().st_mode) == 0o644
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o755
    assert sorted(os.listdir(inbox)) == ["a.wav"]


def test_a_state_dir_around_an_inbox_leaves_the_way_in_open_and_check_config_warns(
    tmp_path: Path,
) -> None:
    """state_dir: the folder that holds the inbox: once runs, tightening the ledger's own
    files but not the inbox (0755 kept, where it was made 0700); check-config warns, as
    for a state_dir inside the inbox; a state_dir of its own, no warning."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(mode=0o755)
    inbox.chmod(0o755)
    around = config(tmp_path, tmp_path)
    done = run_cli("once", "-c", str(around), env={"PATH": "/usr/bin:/bin", **ENV})
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "lock").stat().st_mode) == 0o600
    loaded = checked.load(around, environ=ENV)
    assert preflight.problems(loaded) == []
    (warning,) = preflight.warnings(loaded)
    assert warning.startswith(f"state_dir {tmp_path} and inbox {inbox}: one is inside")
    inside = checked.load(config(tmp_path, inbox / ".state"), environ=ENV)
    assert preflight.state_dir_clash(inside) is None
    assert len(preflight.warnings(inside)) == 1
    apart = checked.load(config(tmp_path, tmp_path / "state"), environ=ENV)
    assert preflight.warnings(apart) == []
