"""Containers no endpoint takes by name (Matroska, QuickTime) are picked up by the default
include and re-encoded into a format the endpoint takes, through the real dropscribe process against the fake API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from test_tracks32 import once, tone, toned, write_tracks

if TYPE_CHECKING:
    from conftest import Setup

pytestmark = pytest.mark.slow
__all__ = ["toned"]


def test_a_two_track_matroska_file_is_transcribed_track_by_track(toned: Setup) -> None:
    """An .mkv of two tagged opus tracks in an inbox with the default include gives one
    transcript per track, none sent as Matroska."""
    write_tracks(
        toned.inbox / "screen.mkv",
        [("eng", tone(440, 0.5, 1.5, 2.5)), ("fre", tone(880, 0.5, 1.5, 2.5))],
        container="matroska",
    )
    toned.data["defaults"]["audio_track"] = "all"
    code, daemon = once(toned)
    assert code == 0
    assert (toned.inbox / "screen.en.txt").read_text() == "tone 440\n"
    assert (toned.inbox / "screen.fr.txt").read_text() == "tone 880\n"
    sent = sorted(u.filename.rsplit(".", 1)[1] for u in toned.api.uploads)
    assert sent == ["flac", "ogg"]  # the first track re-encoded, the second cut out as FLAC
    (done,) = daemon.named("file.done")
    assert done["tracks"] == [0, 1]


def test_a_quicktime_recording_is_transcribed_by_default(toned: Setup) -> None:
    """A phone's .mov (AAC in QuickTime) is taken by the default include and re-encoded."""
    write_tracks(toned.inbox / "memo.mov", [(None, tone(440, 0.5, 1.5, 2.5))], container="mov")
    code, daemon = once(toned)
    assert code == 0
    assert (toned.inbox / "memo.txt").read_text() == "tone 440\n"
    assert [u.filename.rsplit(".", 1)[1] for u in toned.api.uploads] == ["ogg"]
    assert len(daemon.named("file.done")) == 1
