"""What a recording's language detection heard, in the ``heard`` table
(``schema.LAYOUT``): a row per (content, audio track), the detector's probabilities of
every language and the detector that gave them (the model and the way it listened).
A file waiting with ``language.unexpected`` comes again at every rescan: its language
is decided again from this row, not heard again (``jobs/spoken.py``). Changed content
has another key; another detector (``language_model:``, or a new way of listening)
does not match the row: both are heard afresh. The folder's list is not part of the
row: a changed list decides again from the same probabilities.

A backend mixes in ``HeardRows`` and provides ``_rows`` and ``_execute``."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

RECORD = """
INSERT INTO heard (key, track, detector, found, updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (key, track) DO UPDATE SET detector = excluded.detector,
    found = excluded.found, updated = excluded.updated
"""
READ = "SELECT detector, found FROM heard WHERE key = ? AND track = ?"

Found = list[tuple[str, float]]  # (code, probability), best first


class Heard(Protocol):
    """What language detection asks of the ledger."""

    def heard(self, digest: str, track: int, detector: str) -> Found | None:
        """What ``detector`` heard in track ``track`` of content ``digest``; None when it
        has not listened to it (or another detector did)."""
        ...

    def record_heard(self, digest: str, track: int, detector: str, found: Found) -> None:
        """Keep what ``detector`` heard, committed when this returns."""
        ...


class HeardRows:
    """``Heard`` for a backend with ``_rows`` and ``_execute``."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def heard(self, digest: str, track: int, detector: str) -> Found | None:
        """What ``detector`` heard, or None."""
        rows = self._rows(READ, (digest, track))
        if not rows or rows[0][0] != detector:
            return None
        try:
            return [(str(code), float(p)) for code, p in json.loads(rows[0][1])]
        except (ValueError, TypeError):  # a row this version cannot read: heard again
            return None

    def record_heard(self, digest: str, track: int, detector: str, found: Found) -> None:
        """Upsert the row."""
        kept = json.dumps([[code, round(p, 6)] for code, p in found])
        self._execute(RECORD, (digest, track, detector, kept, time.time()))
