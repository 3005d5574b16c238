"""The real ``dropscribe`` process against state faults and touched files: a state disk
that fills while an upload is under way costs no second upload, and a finished file that
is touched or copied over is read once more, not at every rescan."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from fakeapi import default_answer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Setup
    from fakeapi import Upload

pytestmark = pytest.mark.slow


def injected(setup: Setup, code: str) -> dict[str, str]:
    """Environment that runs ``code`` in the daemon's interpreter before dropscribe starts
    (a ``sitecustomize`` module)."""
    folder = setup.root / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(code)
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB disk of our own."""
    with tmpfs(tmp_path / "small", "size=3m") as mount:
        yield mount


@pytest.fixture
def ledger_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB disk holding state/ (the ledger), its scratch audio (state/work) on a disk
    of its own: filled, the ledger's stays full while chunks come and go."""
    with tmpfs(tmp_path / "small", "size=3m") as disk:
        (disk / "state").mkdir()
        with tmpfs(disk / "state" / "work", "size=32m"):
            yield disk


def fill(folder: Path) -> Path:
    """Write one file until the filesystem under ``folder`` is full."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 1):  # the last bytes too: nothing is left
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def test_a_state_disk_filling_during_the_upload_costs_one_upload(
    setup: Setup, small_disk: Path
) -> None:
    """The state disk fills while the server works on the upload: every ledger write after
    the answer fails, the transcript is kept, rescans meanwhile send nothing, and once
    there is room its sidecars are written; one upload in all."""
    setup.state = small_disk / "state"
    setup.data["state_dir"] = str(setup.state)
    setup.data["rescan_seconds"] = 1
    fillers: list[Path] = []

    def filling(upload: Upload) -> dict[str, Any]:
        if not fillers:  # the disk fills before the first answer leaves
            fillers.append(fill(small_disk))
        return default_answer(upload)

    setup.api.answer = filling
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        wait_for(lambda: setup.api.uploads, 20, "the upload")
        full_while_retried(daemon)
        assert not (setup.inbox / "a.txt").exists()
        fillers[0].unlink()
        daemon.wait_event("file.done", timeout=30)
    finally:
        daemon.kill()
    assert (setup.inbox / "a.txt").read_text() == "transcript of a.wav\n"
    assert len(setup.api.uploads) == 1
    assert not daemon.named("job.crashed")
    assert "in memory" in [e.get("kept") for e in daemon.named("transcript.reused")]
    assert not (setup.inbox / "failed").exists()


def full_while_retried(daemon: DaemonProcess) -> None:
    """Wait until a job ended without the ledger, then a later try of it (a rescan's) took
    the transcript from memory, the disk still full; fail at a crash instead."""

    def kept() -> bool:
        return any(
            "transcript is kept" in e.get("action", "") for e in daemon.named("ledger.write_failed")
        )

    daemon.wait_output(lambda: kept() or daemon.named("job.crashed"), 30, "the try to end")
    assert not daemon.named("job.crashed")
    daemon.wait_event("transcript.reused", timeout=30)


def test_a_state_disk_filling_while_chunks_are_answered_costs_no_chunk_twice(
    setup: Setup, ledger_disk: Path
) -> None:
    """A recording sent in chunks: the state disk fills while both are at the server, so
    no checkpoint can be written; the stitched transcript is kept, and once there is
    room its sidecars are written with no chunk sent again."""
    setup.state = ledger_disk / "state"
    setup.data["state_dir"] = str(setup.state)
    setup.data["rescan_seconds"] = 1
    setup.data["endpoints"]["local"]["max_upload_bytes"] = 300_000
    setup.data["defaults"]["chunk_seconds"] = 30
    make_wav(setup.inbox / "a.wav")  # confirms what the model takes: chunks go at once
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("file.done")
        setup.api.hold()
        make_wav(setup.inbox / "talk.wav", seconds=50)
        assert setup.api.wait_waiting(2, timeout=30)
        filler = fill(ledger_disk)
        setup.api.release()
        full_while_retried(daemon)
        assert not (setup.inbox / "talk.txt").exists()
        filler.unlink()
        daemon.wait_event("file.done", count=2, timeout=30)
    finally:
        setup.api.release()
        daemon.kill()
    assert (setup.inbox / "talk.txt").exists()
    assert len(setup.api.uploads) == 3
    assert not daemon.named("job.crashed")
    assert "in memory" in [e.get("kept") for e in daemon.named("transcript.reused")]


COUNTED = """
import structlog
from dropscribe.ingest import source, watcher

log = structlog.get_logger("dropscribe")
fingerprint = source.Opened.fingerprint
scan = watcher.scan


def counted(self):
    log.info("test.hashed", file=str(self.path))
    return fingerprint(self)


def scanned(top, recursive):
    yield from scan(top, recursive)
    log.info("test.scanned", top=str(top))


source.Opened.fingerprint = counted
watcher.scan = scanned
"""


def test_a_touched_or_copied_finished_file_is_read_once_more_not_at_every_rescan(
    setup: Setup,
) -> None:
    """20 finished files, touched or copied over with their own bytes: each is hashed once
    more (found done, its new size/mtime/inode kept), then left alone by later rescans;
    nothing is uploaded again."""
    setup.data["rescan_seconds"] = 1
    names = [f"r{i:02d}.wav" for i in range(20)]
    for i, name in enumerate(names):
        make_wav(setup.inbox / name, freq=300.0 + 20 * i)
    daemon = DaemonProcess(setup, env=injected(setup, COUNTED))

    def hashed() -> collections.Counter[str]:
        return collections.Counter(Path(e["file"]).name for e in daemon.named("test.hashed"))

    try:
        daemon.wait_event("file.done", count=20, timeout=60)
        assert hashed() == dict.fromkeys(names, 1)
        spare = setup.root / "spare.wav"
        for i, name in enumerate(names):
            path = setup.inbox / name
            if i % 2:
                os.utime(path)  # touch
            else:  # cp over itself: same bytes, a new mtime
                shutil.copyfile(path, spare)
                subprocess.run(["cp", "--no-preserve=all", str(spare), str(path)], check=True)
        wait_for(lambda: all(hashed()[n] >= 2 for n in names), 60, "each file hashed again")
        scans = len(daemon.named("test.scanned"))
        daemon.wait_event("test.scanned", count=scans + 4, timeout=30)
    finally:
        daemon.kill()
    assert hashed() == dict.fromkeys(names, 2)
    assert len(setup.api.uploads) == 20
    assert len(daemon.named("file.done")) == 20
