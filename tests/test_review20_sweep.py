"""review20: the rescan's sweep (``sweep.gone``) took a recording in a folder the daemon
may not look into (another user's, closed: 0700) for gone. The folder is there, the
file's ``lstat`` fails with EACCES, and ``os.path.lexists`` says False for any error: its
pending ``after:`` was dropped (``file.after_dropped``, "gone from its folder") and its
wait forgotten, the recording still in its place. Asked in a process without the
capabilities that let root past a folder's mode, as the daemon's own user is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import make_wav

NOBODY = 65534
# root's uid kept (its own files stay readable), the powers over others' files dropped
UNPRIVILEGED = (
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
    "--",
)
ASK = "import json, sys\nfrom dropscribe import sweep\nprint(json.dumps([sweep.gone(p) for p in sys.argv[1:]]))"


def gone_as_a_user(*paths: Path) -> list[bool]:
    """``sweep.gone`` of each path, asked by a process that a folder's mode stops."""
    daemon = str(Path(__file__).parent.parent / "daemon")
    result = subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-c", ASK, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": daemon},
    )
    return list(json.loads(result.stdout))


def test_a_recording_in_a_folder_closed_to_the_daemon_is_not_gone(tmp_path: Path) -> None:
    """A recording in another user's closed folder is not gone; one deleted from an open
    folder is (the sweep said both were gone, and dropped the first's rows)."""
    closed = make_wav(tmp_path / "closed" / "a.wav", seconds=0.1)
    os.chown(closed, NOBODY, NOBODY)
    os.chown(closed.parent, NOBODY, NOBODY)
    closed.parent.chmod(0o700)
    deleted = make_wav(tmp_path / "open" / "b.wav", seconds=0.1)
    deleted.unlink()
    assert gone_as_a_user(closed, deleted) == [False, True]
