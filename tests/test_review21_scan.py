"""review21: a scan's slice ends where the clock says in folders without files too. The
slice's clock was read only after a file was given: an inbox of empty folders (a tree of
dated folders made ahead, a share's folder of 200,000 subfolders) was walked whole in one
slice, and a stop or a reload waited for it as before scan21."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from conftest import named
from dropscribe.intake import Intake
from test_scan21_walk import Ticks

if TYPE_CHECKING:
    from conftest import Setup


def test_a_scan_of_empty_folders_is_walked_in_slices_too(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """500 empty folders and one file: a slice of a tick ends at each name listed and each
    folder walked, not after the whole walk; the walk still finds the one file, once."""
    for n in range(500):
        (setup.inbox / f"day{n:03d}").mkdir()
    (setup.inbox / "day250" / "one.wav").write_bytes(b"x")
    config = setup.load()
    intake = Intake(lambda: config, None, clock=Ticks(), wall=time.time)
    intake.walks.every(config.inboxes)
    slices = 1
    while intake.scan_some(0.0):
        slices += 1
    assert slices > 2 * 500  # the top's 500 names, then each of its 500 folders
    assert intake.waiting() == (0, 1)
    (finished,) = named(events, "scan.finished")
    assert finished["files"] == 1
    assert [e["path"] for e in named(events, "file.detected")] == [
        str(setup.inbox / "day250" / "one.wav")
    ]


def test_a_flat_inbox_of_subfolders_is_listed_in_slices(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """An inbox not recursive with 500 subfolders: its listing is cut by the clock too."""
    setup.data["inboxes"][0]["recursive"] = False
    for n in range(500):
        (setup.inbox / f"sub{n:03d}").mkdir()
    config = setup.load()
    intake = Intake(lambda: config, None, clock=Ticks(), wall=time.time)
    intake.walks.every(config.inboxes)
    slices = 1
    while intake.scan_some(0.0):
        slices += 1
    assert slices > 250
    (finished,) = named(events, "scan.finished")
    assert finished["files"] == 0
