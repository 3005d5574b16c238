"""short18: a recording cut short is said, and its transcript says so where a person looks.

Before a fresh transcript is asked for, whatever the engine and however the file goes
(whole, in chunks, to the local engine), the file's probe is held against what it holds
(``audio/cut.py``): a FLAC, Matroska, MP3 or WAV holding clearly less than its header
declares, or an Ogg ending without its last page, is a warning (``audio.short``) with what a
person can do. It is still transcribed (what was heard is worth keeping), and the
transcript carries the fact (``Transcript.cut_short``): into the ledger with it (a copy
of the same bytes reuses it), the JSON sidecars, and ``explain``.

cutapi19: such a file is never uploaded as it is (a strict server decodes it and refuses
its broken last frame with HTTP 400): its probe says it is cut, and its length is what it
holds, not what its header declares, so the plan re-encodes what it holds (``decide``),
and routes, budgets and progress count those seconds. A track's job (``jobs/tracks.py``)
reads its track from a whole file of its own, made from the cut one: the fact is the
recording's, held against that track's packets there, and carried by each track.

attack20: every fresh transcript passes here with the probe of what was sent, so it is
held here to the audio it covers (``transcript.bounded``): an answer is held to its own
times as it is read, and a hostile server's answer of a million segments, or of times
up to 10^7 s, for a minute's recording was taken, and made sidecars for 100 s of a
worker. The probed length goes instead (twice it: a probe's may be an estimate).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio import cut, probe
from dropscribe.errors import PermanentError
from dropscribe.transcript import CutShort, bounded

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dropscribe.audio.probe import Probe
    from dropscribe.ingest.source import Opened
    from dropscribe.transcript import Transcript

log = structlog.get_logger("dropscribe")


def said(path: Path, found: Probe, track: int = 0) -> CutShort | None:
    """How ``path`` is cut short (``audio.short`` said), or None when it is not."""
    short = cut.short(path, found, track)
    if short is None:
        return None
    kept = CutShort(short.declared, short.held)
    log.warning(
        "audio.short",
        declared_seconds=short.declared,
        decoded_seconds=short.held,
        action=kept.told(),
    )
    return kept


def said_and_kept(
    held: Opened, found: Probe, transcribe: Callable[[Probe], Transcript]
) -> Transcript:
    """``transcribe(found)``, the fresh transcript of ``held`` (``found``: the probe of
    its content), held to the audio's length; when the recording is cut short, said
    before it is sent, ``found`` saying what the content holds, and the fact carried by
    the transcript."""
    recording, track = held.recording
    if track == 0 and recording == held.content:
        short = said(recording, found)
        if short is not None:
            found = dataclasses.replace(found, duration=short.decoded_seconds, cut=True)
    else:  # a track alone, decoded whole from the recording: sent as it is
        try:
            short = said(recording, probe.examine(recording), track)
        except PermanentError:  # its track was read: this cannot be told
            short = None
    answer = bounded(transcribe(found), found.duration)
    return answer if short is None else dataclasses.replace(answer, cut_short=short)
