"""attack15: a file waiting for a known moment is reported again by every job of it
(each rescan runs it and it waits again); the intake keeps one next try per file, not
one per report (a month's budget at the default rescan made thousands per file)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING

from conftest import make_wav
from dropscribe.intake import Intake
from dropscribe.jobs.job import SettledFile

if TYPE_CHECKING:
    from conftest import Setup

REPORTS = 8_640  # a month of rescans (every 300 s, the default), for one waiting file


class Clock:
    """A clock the test moves (the intake's monotonic one and its wall clock alike)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def reported(setup: Setup, clock: Clock) -> tuple[Intake, Path, float]:
    """An intake that was told REPORTS times, as by REPORTS jobs, that one old file
    waits until a day from now (each report's ``until`` a little off, as the workers'
    clocks make it); the held memory is measured around the reports."""
    config = setup.load()
    path = make_wav(setup.inbox / "waits.wav", 0.5)
    intake = Intake(lambda: config, None, clock=clock, wall=clock)
    [inbox] = config.inboxes
    until = clock.now + 86_400
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(REPORTS):
            file = SettledFile(inbox, Path(str(path)), until=until + n * 1e-6)
            intake.finished(file)
            intake.settle(clock.now)  # the loop's turn: the report taken in
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return intake, path, held


def test_a_file_reported_waiting_at_every_rescan_holds_one_next_try(setup):
    """A month of reports that one file waits hold a few kilobytes in the intake, not one
    heap entry (and a path) each."""
    _, _, held = reported(setup, Clock())
    assert held < 256 * 1024, f"{held:,} bytes held for one waiting file"


def test_the_file_still_comes_at_its_latest_moment(setup):
    """After the reports, the file is taken up at the last one's moment: not before,
    settled at once then (an old file), once."""
    clock = Clock()
    intake, path, _ = reported(setup, clock)
    clock.now += 86_400 - 1
    intake.settle(clock.now)
    assert intake.waiting() == (0, 0), "woken before its moment"
    clock.now += 1 + REPORTS * 1e-6
    intake.settle(clock.now)  # hinted: its quiet period starts, already over (old file)
    clock.now += 0.01
    intake.settle(clock.now)
    assert intake.waiting() == (1, 0)
    assert list(intake._ready) == [path]  # the file settled, once
