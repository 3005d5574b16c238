"""attack20: a state_dir another user made first (``/tmp/ds-state``, made by someone else
before the daemon ever ran) was used: the daemon could not (or, as root, could) tighten
it, said so or not, and ran on in a folder whose owner may chmod it open again, rename
the ledger or put links in it. It is refused now, before anything is made there, by the
daemon and by check-config; root's own folders (a volume, an emptyDir) are still used."""

from __future__ import annotations

import os
import pwd
import stat

import pytest

from conftest import DaemonProcess, make_wav
from dropscribe.config import preflight

NOBODY = pwd.getpwnam("nobody")


def test_a_state_dir_of_another_user_is_refused_before_anything_is_made_there(setup):
    """state_dir made 0777 by user nobody: once exits 2 naming the owner and the fix, the
    folder is left as it was (0777, empty: no lock, no ledger), the recording not sent;
    check-config says the same; chowned to this user, the same config runs."""
    setup.state.mkdir(mode=0o777)
    setup.state.chmod(0o777)
    os.chown(setup.state, NOBODY.pw_uid, NOBODY.pw_gid)
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 2
    told = f"state_dir {setup.state} belongs to user nobody (uid {NOBODY.pw_uid})"
    assert any(told in line for line in daemon.raw), daemon.raw[-3:]
    assert not any("Traceback" in line for line in daemon.raw)
    assert stat.S_IMODE(setup.state.stat().st_mode) == 0o777
    assert os.listdir(setup.state) == []
    assert setup.api.uploads == []
    assert any(p.startswith(told) for p in preflight.problems(setup.load()))
    os.chown(setup.state, os.geteuid(), os.getegid())
    assert preflight.problems(setup.load()) == []
    again = DaemonProcess(setup, command="once")
    assert again.wait() == 0
    assert (setup.inbox / "a.txt").exists()
    assert stat.S_IMODE(setup.state.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("key", "where"),
    [("output_dir", "defaults"), ("done_dir", "inbox"), ("failed_dir", "inbox")],
)
def test_a_state_dir_that_is_a_folder_of_sidecars_or_recordings_is_refused(setup, key, where):
    """state_dir: the output_dir (the done_dir, the failed_dir) of a folder: once exits 2
    naming it and the fix, before anything is made there (made private, it closed the
    0644 transcripts or recordings it holds to those who share them, 0600 at the next
    start); check-config says the same."""
    target = setup.root / "shared"
    target.mkdir(mode=0o755)
    (target / "earlier.txt").write_text("a transcript\n")
    (target / "earlier.txt").chmod(0o644)
    setup.data["state_dir"] = str(target)
    if where == "defaults":
        setup.data["defaults"][key] = str(target)
    else:
        setup.data["inboxes"][0][key] = str(target)
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 2
    told = f"state_dir {target} is {key} {target} itself"
    assert any(told in line for line in daemon.raw), daemon.raw[-3:]
    assert stat.S_IMODE((target / "earlier.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert os.listdir(target) == ["earlier.txt"]
    assert any(p.startswith(told) for p in preflight.problems(setup.load()))
