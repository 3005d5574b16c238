"""A state_dir that is an inbox, or holds one, is refused before anything is made or
tightened there (attack19): the daemon makes its state_dir and everything directly in it
private, and had closed the recordings (0600), or the way into the inbox (0700), to those
who share them. A state_dir inside an inbox is only a warning."""

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


def test_check_config_refuses_a_state_dir_around_an_inbox_and_warns_of_one_inside(
    tmp_path: Path,
) -> None:
    """An inbox inside state_dir is a problem (its way in would be closed); a state_dir
    inside an inbox, a warning; a state_dir of its own, neither."""
    (tmp_path / "inbox").mkdir()
    around = checked.load(config(tmp_path, tmp_path), environ=ENV)
    assert preflight.problems(around)[0].startswith(
        f"inbox {tmp_path / 'inbox'} is inside state_dir {tmp_path}:"
    )
    inside = checked.load(config(tmp_path, tmp_path / "inbox" / ".state"), environ=ENV)
    assert preflight.state_dir_clash(inside) is None
    (warning,) = preflight.warnings(inside)
    assert warning.startswith(f"state_dir {tmp_path / 'inbox' / '.state'} is inside inbox")
    apart = checked.load(config(tmp_path, tmp_path / "state"), environ=ENV)
    assert preflight.state_dir_clash(apart) is None
    assert preflight.warnings(apart) == []
