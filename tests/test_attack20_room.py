"""attack20: what a recording decodes to is not bounded by its size. An hour of silence
is 656 kB of FLAC and 115 MB of decoded samples under state_dir/work: a few such files
filled the disk the ledger (and often the whole system) writes to, until the decode
failed with ENOSPC. Scratch audio now stops short of the file system's last 64 MiB (or
5 %), and the job is tried again later, saying why."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from typing import TYPE_CHECKING

import av
import numpy as np
import pytest

from conftest import DaemonProcess, patience

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow


def silence(path: Path, minutes: int) -> Path:
    """A mono 16 kHz FLAC of ``minutes`` of digital silence (about 11 kB a minute)."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000, layout="mono")
        block = np.zeros((1, 16000 * 60), dtype=np.int16)
        for minute in range(minutes):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = 16000
            frame.pts = minute * block.shape[1]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture
def small_disk(setup) -> Iterator[Path]:
    """state_dir on a 96 MiB tmpfs of its own."""
    setup.state.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(setup.state)], check=True
    )
    try:
        yield setup.state
    finally:
        subprocess.run(["umount", "-l", str(setup.state)], check=False)


def free(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def test_a_recording_that_decodes_past_the_disk_leaves_the_reserve_free(setup, small_disk):
    """An hour of silence (656 kB of FLAC, 115 MB decoded) over the upload limit, its
    state_dir on a 96 MiB file system: the decode stops with audio.scratch_failed saying
    what is kept, the file waits (exit 1, nothing uploaded), and the file system never had
    less than the reserve free while it ran (it was filled to the last byte before)."""
    setup.data["endpoints"]["local"]["max_upload_bytes"] = 300_000
    silence(setup.inbox / "hour.flac", 60)
    daemon = DaemonProcess(setup, command="once")
    least = free(small_disk)
    deadline = time.monotonic() + patience(120)
    while daemon.proc.poll() is None and time.monotonic() < deadline:
        least = min(least, free(small_disk))
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.proc.wait(0.005)
    assert daemon.wait() == 1
    assert least >= 24 << 20, f"{least / 2**20:.1f} MiB free at the least"  # a quarter of 96
    (failed,) = daemon.named("audio.scratch_failed")
    assert "MiB are kept for the ledger" in failed["error"], failed["error"]
    assert setup.api.uploads == []
