"""learned20: the folders a recording cut into chunks is worked in (state_dir/work and
one folder per job under it) were made under the umask: 0777 under umask 000, listable
and enterable by anyone who could reach a state_dir the daemon could not tighten. They
are 0700 now."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def folders_under(folder: Path) -> dict[str, int]:
    """``folder`` and every folder below it (by its path from ``folder``'s parent), and
    their permission bits."""
    found = {folder.name: stat.S_IMODE(os.stat(folder).st_mode)}
    for top, names, _ in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            found[os.path.relpath(path, folder.parent)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


@pytest.mark.usefixtures("umask_000")
def test_scratch_folders_of_a_chunked_recording_are_private_under_umask_000(setup):
    """``once`` on a 20-s WAV over a 300 kB upload limit, held at its first chunk's
    upload: state_dir/work and the job's folder in it are 0700; released, the file is
    done and the run ends."""
    setup.data["endpoints"]["local"]["max_upload_bytes"] = 300_000
    setup.data["defaults"]["chunk_seconds"] = 30
    setup.api.hold()
    make_wav(setup.inbox / "talk.wav", seconds=20)
    daemon = DaemonProcess(setup, command="once")
    try:
        assert setup.api.wait_waiting(1, timeout=30)
        modes = folders_under(setup.state / "work")
        assert len(modes) >= 2, modes
        assert {name: mode for name, mode in modes.items() if mode != 0o700} == {}
        setup.api.release()
        assert daemon.wait(timeout=60) == 0
    finally:
        setup.api.release()
        daemon.kill()
    assert daemon.named("file.done")
