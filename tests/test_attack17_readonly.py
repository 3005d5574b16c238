"""attack17: an inbox remounted read-only while its file is at the server (a disk that
the kernel turned read-only after an error, an admin's ``mount -o remount,ro``): the
paid transcript is kept, the file is neither quarantined nor failed for good, and once
the mount is writable again its sidecars are written with no second upload. Through the
real ``dropscribe`` process, a tmpfs of the test's own and the fake API."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs

pytestmark = pytest.mark.slow


def remount(folder: Any, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def test_an_inbox_remounted_read_only_mid_upload_keeps_the_transcript(setup: Any) -> None:
    """The inbox goes read-only while its file is at the server: nothing is quarantined,
    and once it is writable again the sidecars are written from the kept transcript."""
    with tmpfs(setup.root / "disk", "size=8m") as disk:
        setup.data["inboxes"] = [{"path": str(disk)}]
        setup.data["rescan_seconds"] = 1
        setup.api.hold()
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            make_wav(disk / "a.wav")
            assert setup.api.wait_waiting(1)
            remount(disk, "ro")
            setup.api.release()
            daemon.wait_output(
                lambda: bool(daemon.named("sidecar.failed") or daemon.named("file.failed")),
                20,
                "the sidecars' failure",
            )
            remount(disk, "rw")
            daemon.wait_event("file.done")
        finally:
            remount(disk, "rw")
            daemon.kill()
        assert (disk / "a.txt").read_text() == "transcript of a.wav\n"
        assert not (disk / "failed").exists()
    assert len(setup.api.uploads) == 1
    assert not daemon.named("file.failed")
