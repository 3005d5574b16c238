"""Pure: a folder's ``glossary:`` applied to a transcript before any sidecar is rendered
from it: its text, every segment's text and every word, in one deterministic pass.

Whole words only: a key matches where no letter, digit or underscore touches it on
either side. A key in lower case matches any case, and its replacement takes the case
shape of what it replaces (all capitals, or a capital first letter; else as written);
a key with a capital matches exactly that spelling. A key of several words matches
them across any whitespace, in the text and across words: the words it spans become
one, from the first one's start to the last one's end. Where keys overlap, the longer
wins. The stored transcript is never changed: a new glossary re-renders the sidecars
from it.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from dropscribe.transcript import Segment, Transcript, Word
    from dropscribe.vocab.glossary import Entries


class Glossary:
    """The entries compiled into one pattern (longest keys first) and their lookups."""

    def __init__(self, entries: Entries) -> None:
        self._exact: dict[str, str] = {}  # keys with a capital, as written
        self._folded: dict[str, str] = {}  # keys in lower case
        parts = []
        for key, replacement in sorted(entries, key=lambda entry: -len(entry[0])):
            body = r"\s+".join(re.escape(word) for word in key.split())
            if key == key.lower():
                self._folded.setdefault(key.lower(), replacement)
                parts.append(f"(?i:{body})")
            else:
                self._exact.setdefault(key, replacement)
                parts.append(body)
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")

    def _replacement(self, match: re.Match[str]) -> str:
        found = match.group()
        spaced = " ".join(found.split())
        if spaced in self._exact:
            return self._exact[spaced]
        replacement = self._folded.get(spaced.lower())
        return found if replacement is None else shaped(replacement, found)

    def text(self, text: str) -> str:
        return self._pattern.sub(self._replacement, text)

    def words(self, words: tuple[Word, ...]) -> tuple[Word, ...]:
        """The words with every match replaced; a match across words makes them one."""
        joined, starts, ends = "", [], []
        for word in words:
            text = word["word"]
            if joined and not joined[-1].isspace() and not text[:1].isspace():
                joined += " "  # words given without their spaces: keep them apart
            starts.append(len(joined))
            joined += text
            ends.append(len(joined))
        groups: list[list[int]] = []  # [first word, last word] of each run of matches
        for match in self._pattern.finditer(joined):
            first = bisect.bisect_right(starts, match.start()) - 1
            last = bisect.bisect_right(starts, match.end() - 1) - 1
            if groups and first <= groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], last)
            else:
                groups.append([first, last])
        if not groups:
            return words
        out: list[Word] = []
        done = 0
        for first, last in groups:
            out.extend(words[done:first])
            piece = self.text(joined[starts[first] : ends[last]])
            merged = cast("Word", dict(words[first]))
            merged["word"] = piece
            merged["end"] = words[last]["end"]
            out.append(merged)
            done = last + 1
        out.extend(words[done:])
        return tuple(out)


def shaped(replacement: str, found: str) -> str:
    """``replacement`` in the case shape of ``found``: all capitals where it is (two
    letters or more), a capital first letter where it has one; else as written."""
    letters = [ch for ch in found if ch.isalpha()]
    if len(letters) > 1 and all(ch.isupper() for ch in letters):
        return replacement.upper()
    if letters and letters[0].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


@functools.lru_cache(maxsize=32)
def compiled(entries: Entries) -> Glossary:
    return Glossary(entries)


def applied(transcript: Transcript, entries: Entries) -> Transcript:
    """``transcript`` with the glossary applied to its text, segments and words."""
    if not entries:
        return transcript
    glossary = compiled(entries)
    segments = []
    for segment in transcript.segments:
        changed = cast("Segment", dict(segment))
        changed["text"] = glossary.text(segment["text"])
        segments.append(changed)
    return dataclasses.replace(
        transcript,
        text=glossary.text(transcript.text),
        segments=tuple(segments),
        words=glossary.words(transcript.words),
    )
