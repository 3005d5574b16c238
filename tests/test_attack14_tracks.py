"""attack14: multi-track files (audio_track:) from a hostile dropper, through the real
dropscribe process: a file of a hundred audio streams under ``audio_track: all``, and
stream language tags that hold path separators, ``..`` and escape codes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess
from test_tracks32 import tone, write_tracks

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def test_a_hundred_streams_under_all_fail_unsent(setup):
    """A file of 100 audio streams (``audio_track: all``) fails with a reason naming the
    count and the most that ``all`` takes; nothing is uploaded and no sidecar written
    (it used to be 100 uploads, each decoding the whole file again)."""
    setup.data["defaults"]["audio_track"] = "all"
    streams: list[tuple[str | None, object]] = [(None, tone(440, 0.0, 0.2, 0.2))] * 100
    crowd = write_tracks(setup.inbox / "crowd.mp4", streams)  # type: ignore[arg-type]
    proc = DaemonProcess(setup, command="once")
    proc.wait(120)
    (failed,) = proc.named("file.failed")
    assert failed["path"] == str(crowd)
    assert "100 audio streams" in failed["error"]
    assert not setup.api.uploads
    assert not [p for p in setup.inbox.rglob("*.txt") if "failed" not in p.parts]


@pytest.mark.parametrize(
    "tags",
    [("../../etc", "/"), ("e\x1b]0;owned\x07n", "..")],
    ids=["separators", "escapes"],
)
def test_hostile_language_tags_never_name_a_sidecar(setup, tags):
    """Two streams tagged with path separators, ``..`` or escape codes: each track's
    sidecars are ``name.track<N>.txt`` beside the recording, nothing elsewhere."""
    setup.data["defaults"]["audio_track"] = "all"
    root: Path = setup.root
    setup.write()
    before = {p for p in root.rglob("*") if "state" not in p.parts}
    movie = write_tracks(
        setup.inbox / "movie.mp4",
        [(tags[0], tone(440, 0.0, 0.5, 0.5)), (tags[1], tone(880, 0.0, 0.5, 0.5))],
    )
    proc = DaemonProcess(setup, command="once")
    assert proc.wait(120) == 0
    assert sorted(os.listdir(setup.inbox)) == ["movie.mp4", "movie.track0.txt", "movie.track1.txt"]
    after = {p for p in root.rglob("*") if "state" not in p.parts}
    assert after - before == {movie, *(setup.inbox / f"movie.track{n}.txt" for n in (0, 1))}
