"""attack17: ``after: move`` into a ``done_dir`` on a full disk of its own (a NAS share,
a small partition). Nothing is half-written there and the recording stays in the inbox
(``file.after_failed``); once the disk has room again, the move should be done. Through
the real ``dropscribe`` process, a 3 MiB tmpfs and the fake API."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from test_attacks_ledgerfix import fill

pytestmark = pytest.mark.slow


def test_a_recording_is_moved_once_a_full_done_dir_has_room(setup: Any) -> None:
    """The move fails for a full done_dir and leaves nothing there; with room again, the
    recording is moved at a rescan, with no second upload."""
    with tmpfs(setup.root / "done", "size=3m") as done:
        setup.data["inboxes"][0].update(done_dir=str(done))
        setup.data["defaults"]["after"] = "move"
        setup.data["rescan_seconds"] = 1
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            filler = fill(done)
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("file.after_failed")
            assert sorted(p.name for p in done.iterdir()) == ["filler"]  # nothing half-written
            assert (setup.inbox / "a.wav").is_file()
            assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"
            filler.unlink()
            wait_for((done / "a.wav").is_file, 5, "the recording moved")
        finally:
            daemon.kill()
    assert len(setup.api.uploads) == 1
