"""short18: a recording cut short is said, and its transcript says so where a person looks.

Before a fresh transcript is asked for, whatever the engine and however the file goes
(whole, in chunks, to the local engine), the file's probe is held against what it holds
(``audio/cut.py``): a FLAC, Matroska, MP3 or WAV holding clearly less than its header
declares, or an Ogg ending inside a page, is a warning (``audio.short``) with what a
person can do. It is still transcribed (what was heard is worth keeping), and the
transcript carries the fact (``Transcript.cut_short``): into the ledger with it (a copy
of the same bytes reuses it), the JSON sidecars, and ``explain``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio import cut
from dropscribe.transcript import CutShort

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dropscribe.audio.probe import Probe
    from dropscribe.transcript import Transcript

log = structlog.get_logger("dropscribe")


def said(path: Path, found: Probe) -> CutShort | None:
    """How ``path`` is cut short (``audio.short`` said), or None when it is not."""
    short = cut.short(path, found)
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


def said_and_kept(path: Path, found: Probe, transcribe: Callable[[], Transcript]) -> Transcript:
    """``transcribe()``, the fresh transcript of ``path`` (``found``: its probe); when the
    file is cut short, said before it is sent, and carried by the transcript."""
    short = said(path, found)
    answer = transcribe()
    return answer if short is None else dataclasses.replace(answer, cut_short=short)
