"""attack20: the scratch copies of a recording cut into chunks (its decoded samples, each
chunk) are 0600 whatever the umask. Under umask 000 they were 0666: readable by anyone
who could reach the folder, as in a state_dir the daemon could not tighten (another
owner's: ``state_dir.not_private``, and it runs on)."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def files_under(folder: Path) -> dict[str, int]:
    """Every file below ``folder`` (by its name) and its permission bits."""
    return {
        name: stat.S_IMODE(os.stat(os.path.join(top, name)).st_mode)
        for top, _, names in os.walk(folder)
        for name in names
    }


@pytest.mark.usefixtures("umask_000")
def test_scratch_audio_of_a_chunked_recording_is_private_under_umask_000(setup):
    """A 20-s WAV over a 300 kB upload limit, held at its first chunk's upload: the
    decoded samples and the chunk under state_dir/work are 0600; once released the
    file is done and the scratch gone."""
    setup.data["endpoints"]["local"]["max_upload_bytes"] = 300_000
    setup.data["defaults"]["chunk_seconds"] = 30
    setup.api.hold()
    make_wav(setup.inbox / "talk.wav", seconds=20).chmod(0o600)
    daemon = DaemonProcess(setup)
    try:
        assert setup.api.wait_waiting(1, timeout=30)
        modes = files_under(setup.state / "work")
        assert "audio.pcm" in modes, modes
        assert any(name.endswith(".ogg") for name in modes), modes
        assert {name: mode for name, mode in modes.items() if mode & 0o077} == {}
        setup.api.release()
        daemon.wait_event("file.done")
    finally:
        setup.api.release()
        daemon.kill()
    assert files_under(setup.state / "work") == {}
