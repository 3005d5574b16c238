"""attack17b: a hostile inbox writer between a failed ``after: move`` and its retry at a
rescan (done17), through the real ``dropscribe`` process: the recording replaced by a
link to a file outside the inbox. A guard: it holds on main (the retry reopens the name
without following links), kept so that it stays so."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from conftest import Setup


def test_a_link_planted_for_a_pending_move_never_moves_the_file_outside(setup: Setup) -> None:
    """done_dir blocked (a file in its place): the move fails and is pending; the
    recording replaced by a link to a root-only file outside, done_dir freed: rescans
    find a link (file.ignored), nothing goes into done_dir but the next recording, the
    outside file stays, no second upload of it."""
    done = setup.root / "done"
    done.write_text("in the way\n")
    setup.data["inboxes"][0].update(done_dir=str(done))
    setup.data["defaults"]["after"] = "move"
    setup.data["rescan_seconds"] = 1
    outside = make_wav(setup.root / "outside.wav")
    outside.chmod(0o600)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        recording = make_wav(setup.inbox / "a.wav")
        daemon.wait_event("file.after_failed")
        recording.unlink()
        recording.symlink_to(outside)
        done.unlink()
        daemon.wait_event("file.ignored", timeout=30)  # said once (test_ignored17)
        make_wav(setup.inbox / "b.wav", freq=550.0)  # rescans pass while it settles
        daemon.wait_event("file.done", count=2, timeout=30)
    finally:
        daemon.kill()
    assert all(e["reason"] == "symbolic link" for e in daemon.named("file.ignored"))
    assert not daemon.named("file.after_done")
    assert [p.name for p in done.iterdir()] == ["b.wav"]
    assert outside.is_file()
    assert not outside.is_symlink()
    assert os.path.islink(recording)
    assert len(setup.api.uploads) == 2  # a.wav once, b.wav
