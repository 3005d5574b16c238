"""scan21: a scan cut into slices finds what a whole one found, each file once. The
intake's scans are walked by the main loop a slice at a time (``Intake.scan_some``); a
slice ends where the clock says and the next goes on where it stopped, in the middle of a
folder's listing as well (each folder is listed as its names come)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conftest import named
from dropscribe.config.rules import JUNK_FOLDERS
from dropscribe.intake import Intake

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Setup


class Ticks:
    """A clock that moves one tick each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def tree(inbox: Path) -> None:
    """Files in the inbox, in folders three deep (some of 300 names), in a hidden folder,
    a junk folder, behind a link to a folder, and a link to a folder among the files."""
    for folder in ["", "a", "a/b", "a/b/c", ".hidden", "@eaDir", "big"]:
        (inbox / folder).mkdir(parents=True, exist_ok=True)
        (inbox / folder / "one.wav").write_bytes(b"x")
    for n in range(300):
        (inbox / "big" / f"r{n}.wav").write_bytes(b"x")
    (inbox / "to-a").symlink_to(inbox / "a", target_is_directory=True)


def walked(top: Path) -> Iterator[Path]:
    """What a scan finds, as ``os.walk`` found it before scan21."""
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in JUNK_FOLDERS]
        for name in files:
            yield Path(folder) / name


def test_a_scan_in_slices_of_a_tick_finds_each_file_once_and_what_a_whole_one_did(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """A full scan walked a file at a time takes as many slices, finds every file a whole
    walk finds (none in hidden or junk folders, none behind a link), each once, and says
    so once (scan.finished) when its last slice ends."""
    tree(setup.inbox)
    config = setup.load()
    intake = Intake(lambda: config, None, clock=Ticks(), wall=time.time)
    intake.walks.every(config.inboxes)
    slices = 1
    while intake.scan_some(0.0):  # a slice: one file (the clock is past 0 at once)
        slices += 1
    expected = sorted(walked(setup.inbox))
    assert len(expected) == 305
    assert slices > 100
    assert intake.waiting() == (0, len(expected))
    (finished,) = named(events, "scan.finished")
    assert finished["files"] == len(expected)
    detected = [Path(e["path"]) for e in named(events, "file.detected")]
    assert sorted(detected) == expected
