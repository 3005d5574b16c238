"""Pure: who speaks, as one label whichever provider said it.

Providers name speakers their own way: OpenAI ``A``, ``B`` … (or a known speaker's
name), WhisperX ``SPEAKER_00``, Mistral and Together a number or ``speaker_1``. Such
generic labels become ``A``, ``B``, ``C`` … in order of first appearance; a name (a
known voice) stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from dropscribe.transcript import Transcript

GENERIC = re.compile(r"(?i:speaker[ _-]?)?\d+|[A-Z]")


def letter(n: int) -> str:
    """A, B, … Z, AA, AB, …: the n-th (from 0) generic speaker."""
    out = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


def free_letter(taken: Collection[str]) -> str:
    """The first of A, B, … not in ``taken``."""
    n = 0
    while letter(n) in taken:
        n += 1
    return letter(n)


def labels(transcript: Transcript) -> list[str]:
    """The speakers in order of first appearance."""
    seen: dict[str, None] = {}
    for item in (*transcript.segments, *transcript.words):
        label = item.get("speaker")
        if label is not None:
            seen.setdefault(label)
    return list(seen)


def normalised(transcript: Transcript, taken: Iterable[str] = ()) -> Transcript:
    """``transcript`` with its generic labels as letters in order of appearance, after
    the letters in ``taken``."""
    mapping: dict[str, str] = {}
    used = set(taken)
    for label in labels(transcript):
        if GENERIC.fullmatch(label):
            mapping[label] = free_letter(used)
            used.add(mapping[label])
    return relabelled(transcript, mapping)


def relabelled(transcript: Transcript, mapping: Mapping[str, str]) -> Transcript:
    """``transcript`` with its speaker labels renamed by ``mapping`` (others kept)."""
    if all(old == new for old, new in mapping.items()):
        return transcript
    segments = tuple(
        {**seg, "speaker": mapping.get(seg["speaker"], seg["speaker"])} if "speaker" in seg else seg
        for seg in transcript.segments
    )
    words = tuple(
        {**w, "speaker": mapping.get(w["speaker"], w["speaker"])} if "speaker" in w else w
        for w in transcript.words
    )
    return replace(transcript, segments=segments, words=words)  # type: ignore[arg-type]
