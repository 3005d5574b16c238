"""attack20: the inbox under another path that no link explains (a bind mount of it, the
same export mounted twice) was told from the state_dir by paths alone. As state_dir it
was taken and made private: the recordings 0600, the inbox 0700, a ledger among them.
Bind-mounted inside the state_dir it was closed as the state_dir's own folder. Folders
are now one when their device and inode are."""

from __future__ import annotations

import os
import stat

from conftest import DaemonProcess, make_wav


def test_a_state_dir_that_is_the_inbox_bind_mounted_is_refused(setup):
    """state_dir: an empty folder on which the inbox is bind-mounted (in the daemon's
    own mount namespace): once exits 2 naming the clash, the inbox keeps its 0755, the
    recording its 0644, and nothing is made among them."""
    setup.inbox.chmod(0o755)
    make_wav(setup.inbox / "a.wav").chmod(0o644)
    setup.state.mkdir()
    daemon = DaemonProcess(setup, command="once", mounts={str(setup.state): setup.inbox})
    assert daemon.wait() == 2
    assert any(f"is inbox {setup.inbox} itself" in line for line in daemon.raw), daemon.raw
    assert stat.S_IMODE(setup.inbox.stat().st_mode) == 0o755
    assert stat.S_IMODE((setup.inbox / "a.wav").stat().st_mode) == 0o644
    assert os.listdir(setup.inbox) == ["a.wav"]
    assert setup.api.uploads == []


def test_the_inbox_bind_mounted_inside_the_state_dir_is_left_open(setup):
    """The inbox bind-mounted on state_dir/in: the recording is done, the ledger's own
    files are tightened, and the inbox (the same folder) keeps its 0755."""
    setup.inbox.chmod(0o755)
    make_wav(setup.inbox / "a.wav")
    (setup.state / "in").mkdir(parents=True)
    mounts = {str(setup.state / "in"): setup.inbox}
    daemon = DaemonProcess(setup, command="once", mounts=mounts)
    assert daemon.wait() == 0
    assert (setup.inbox / "a.txt").exists()
    assert stat.S_IMODE(setup.inbox.stat().st_mode) == 0o755
    assert stat.S_IMODE((setup.state / "lock").stat().st_mode) == 0o600
