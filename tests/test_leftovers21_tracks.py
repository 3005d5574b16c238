"""leftovers21: a track other than a recording's first is decoded alone into a FLAC file
under state_dir/work. That folder was made under the umask (0777 under umask 000), where
every other scratch folder is 0700 from the start (``chunked.private_folder``): the split
tracks of a multi-track recording were listable by every local user. Now it is 0700, as is
the track's own folder in it, and the FLAC file 0600."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess
from test_learned20_scratch import folders_under
from test_tracks32 import toned, two_tracks

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow
__all__ = ["toned"]  # the fake API that hears tones, as a fixture here


@pytest.mark.usefixtures("umask_000")
def test_a_second_tracks_scratch_is_private_under_umask_000(toned: Setup) -> None:
    """``once`` on a real two-track MP4 with audio_track: 1, held at the German track's
    upload: state_dir/work and the track's folder are 0700, its FLAC 0600; released, the
    file is done and the run ends."""
    two_tracks(toned)
    toned.data["defaults"].update({"audio_track": 1})
    toned.api.hold()
    daemon = DaemonProcess(toned, command="once")
    try:
        assert toned.api.wait_waiting(1, timeout=30)
        work = toned.state / "work"
        modes = folders_under(work)
        assert any(name.startswith("work/track-") for name in modes), modes
        assert {name: mode for name, mode in modes.items() if mode != 0o700} == {}
        files = {
            name: stat.S_IMODE(os.stat(os.path.join(top, name)).st_mode)
            for top, _, names in os.walk(work)
            for name in names
        }
        assert list(files) == ["movie.track1.flac"], files
        assert files["movie.track1.flac"] == 0o600
        toned.api.release()
        assert daemon.wait(timeout=60) == 0
    finally:
        toned.api.release()
        daemon.kill()
    (done,) = daemon.named("file.done")
    assert done["tracks"] == [1]
    assert (toned.inbox / "movie.txt").read_text() == "tone 880\n"
