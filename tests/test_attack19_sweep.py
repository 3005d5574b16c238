"""attack19: the rescan's sweep (``sweep.gone``) asks whether a pending ``after:``'s or
a wait's recording is gone, and whether its folder is still there. For a folder named in
64 or more bytes that are not UTF-8 the ledger's ``\\xNN`` text of it is over the 255
bytes a name may have, and ``Path.is_dir`` raises ENAMETOOLONG (EACCES likewise, for a
daemon not root, of a folder its owner closed): the main loop died at its first rescan,
at start too, again at each restart."""

from __future__ import annotations

import os
import signal

from conftest import DaemonProcess, make_wav
from dropscribe import names
from dropscribe.ledger.store import SqliteLedger

ENDS = ("file.after_dropped", "daemon.failed", "daemon.crashed")
FOLDER = b"\xe9t\xe9 " * 30  # 120 bytes of Latin-1 ("été été ..."), 300 as \xNN text


def test_a_pending_after_under_a_latin1_folder_is_swept_and_the_daemon_lives(setup):
    """A pending move of a recording in a folder named in 120 Latin-1 bytes, deleted by
    hand: the daemon starts, its rescan drops the row (file.after_dropped), it stays up
    and stops with 0; the daemon died at start with OSError: File name too long."""
    setup.data["inboxes"][0]["recursive"] = True
    setup.write()
    recording = make_wav(setup.inbox / os.fsdecode(FOLDER) / "a.wav", seconds=0.1)
    ledger = SqliteLedger(setup.state / "ledger.sqlite3")
    try:
        ledger.after_failed(recording, "inbox", "move", "Permission denied")
        ledger.record_wait(recording, "0123456789abcdef")
    finally:
        ledger.close()
    recording.unlink()
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_output(
            lambda: any(daemon.named(name) for name in ENDS),
            60,
            f"one of {ENDS}",
        )
        assert not daemon.named("daemon.crashed"), daemon
        assert daemon.proc.poll() is None, daemon
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    (dropped,) = daemon.named("file.after_dropped")
    assert dropped["path"] == names.text(recording)
    assert not any("Traceback" in line for line in daemon.raw)
