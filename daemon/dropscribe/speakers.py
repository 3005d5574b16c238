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
    """The first of A, B, … not in ``taken`` (for many, ``Letters`` hands them out)."""
    return Letters(taken).next()


class Letters:
    """Hands out A, B, C … skipping those taken, each once. The taken set only grows,
    so the next free letter is never before the last one handed out: all of them cost
    as much as the letters handed out and skipped, not that many times over (8,000
    labels, each looking from ``A`` again, took two minutes)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)
        self._at = 0  # every letter before this one is taken

    def take(self, label: str) -> None:
        """``label`` is used: it will not be handed out."""
        self._taken.add(label)

    def next(self) -> str:
        """The first letter not taken, which is taken from now on."""
        while letter(self._at) in self._taken:
            self._at += 1
        found = letter(self._at)
        self._taken.add(found)
        self._at += 1
        return found


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
    letters = Letters(taken)
    for label in labels(transcript):
        if GENERIC.fullmatch(label):
            mapping[label] = letters.next()
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
