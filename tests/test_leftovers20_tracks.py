"""leftovers20: a recording with an audio track no codec here reads beside good ones (a
Matroska whose second track's codec id FFmpeg does not know). ``probe.tracks`` failed the
whole file; now the tracks a codec reads are transcribed, the other skipped with
``audio.track_skipped`` naming it, and a file of no readable track the chosen one still
fails with its reason. Real files muxed by PyAV, the codec id changed in the bytes."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from conftest import patience
from test_tracks32 import once, tone, toned, write_tracks

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow
__all__ = ["toned"]  # the fake API that hears tones, as a fixture here


def matroska(path: Path, languages: list[str], unknown: int) -> Path:
    """Opus tracks at 440, 880, 660 Hz... tagged ``languages``; track ``unknown``'s codec
    id made one no FFmpeg knows (``A_OPUS`` -> ``A_ZZZZ``, the same length)."""
    hertz = [440, 880, 660]
    write_tracks(
        path,
        [(lang, tone(hertz[n], 0.3, 1.3, 2.0)) for n, lang in enumerate(languages)],
        container="matroska",
    )
    data = bytearray(path.read_bytes())
    at = -1
    for _ in range(unknown + 1):
        at = data.index(b"A_OPUS", at + 1)
    data[at : at + 6] = b"A_ZZZZ"
    path.write_bytes(bytes(data))
    return path


def test_all_transcribes_the_readable_tracks_and_skips_the_other(toned: Setup) -> None:
    """audio_track: all on English, unknown-codec German, French: the English and French
    tracks are transcribed (movie.en.txt, movie.fr.txt), the German one skipped with a
    warning naming it and its codec; the file is done (exit 0)."""
    matroska(toned.inbox / "movie.mkv", ["eng", "deu", "fra"], unknown=1)
    toned.data["defaults"].update({"audio_track": "all"})
    code, daemon = once(toned)
    assert code == 0, daemon
    inbox = toned.inbox
    assert (inbox / "movie.en.txt").read_text() == "tone 440\n"
    assert (inbox / "movie.fr.txt").read_text() == "tone 660\n"
    assert not list(inbox.glob("movie.de.*"))
    (skipped,) = daemon.named("audio.track_skipped")
    assert (skipped["track"], skipped["language"], skipped["codec"]) == (1, "deu", "unknown")
    assert skipped["level"] == "warning"
    assert "no codec here reads it" in skipped["reason"]
    assert skipped["action"].startswith("the other tracks are transcribed")
    (tracks,) = daemon.named("audio.tracks")
    assert (tracks["taken"], tracks["skipped"]) == ([0, 2], [1])
    (done,) = daemon.named("file.done")
    assert done["tracks"] == [0, 2]
    assert len(toned.api.uploads) == 2


def test_a_file_whose_chosen_track_is_unreadable_fails_naming_it(toned: Setup) -> None:
    """audio_track: de, the German track unreadable: the file fails naming that track
    and what to do; nothing is uploaded."""
    matroska(toned.inbox / "movie.mkv", ["eng", "deu"], unknown=1)
    toned.data["defaults"].update({"audio_track": "de"})
    code, daemon = once(toned)
    assert code == 1
    (failed,) = daemon.named("file.failed")
    assert failed["error"].startswith("no codec here reads its audio (track 1 (deu):"), failed
    assert "convert it" in failed["error"]
    assert toned.api.uploads == []


def test_the_first_track_unreadable_says_which_one_can_be_read(toned: Setup) -> None:
    """No audio_track: (the first stream) and the first stream unreadable: the file fails
    saying that track 1 can be read and that audio_track: 1 takes it."""
    matroska(toned.inbox / "movie.mkv", ["eng", "deu"], unknown=0)
    code, daemon = once(toned)
    assert code == 1
    (failed,) = daemon.named("file.failed")
    assert "its track 1 can be read: audio_track: 1 (or all) takes it" in failed["error"]
    assert toned.api.uploads == []


def test_explain_shows_the_unreadable_track_and_that_it_is_skipped(toned: Setup) -> None:
    """explain lists the unreadable track with "unknown codec", takes the others, and says
    which it skips and why."""
    path = matroska(toned.inbox / "movie.mkv", ["eng", "deu", "fra"], unknown=1)
    toned.data["defaults"].update({"audio_track": "all"})
    shown = subprocess.run(
        [sys.executable, "-m", "dropscribe", "explain", "-c", str(toned.write()), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=patience(30),
    )
    assert "  audio tracks: 0 (eng), 1 (deu, unknown codec), 2 (fra)\n" in shown.stdout
    assert "    taken: 0 (eng) as movie.en.*, 2 (fra) as movie.fr.*\n" in shown.stdout
    assert "    skipped: 1 (deu): no codec here reads it" in shown.stdout
