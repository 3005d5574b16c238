"""``glossary:``, a find -> replace list applied to every sidecar (``outputs/glossary.py``
applies it): its entries checked, and the mark that tells which glossary a file's
sidecars were written with, so a changed glossary writes them again.

Case rules: a key in lower case matches any case and the replacement takes the case
shape of what it replaces (``eefa: Aoife`` turns ``EEFA`` into ``AOIFE``); a key with a
capital matches exactly that spelling. Keys match whole words; a key of several words
matches them across any whitespace.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

MOST = 10_000  # entries
LONGEST = 200  # characters of a key or a replacement
MARK = "glossary:"  # in the ledger's list of the formats a file was done with

Entries = tuple[tuple[str, str], ...]


def checked(value: Any) -> Entries:
    """A mapping (or pairs) as entries, in their order; ValueError naming what is wrong."""
    pairs = value.items() if isinstance(value, dict) else value
    if not isinstance(pairs, (list, tuple)) and not isinstance(value, dict):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            'must be a mapping of what to find to what to write, such as {"Eefa": "Aoife"}'
        )
    out: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError("each entry is what to find and what to write instead")
        key, replacement = pair
        problem = entry_problem(key, replacement)
        if problem:
            raise ValueError(f"{key!r}: {problem}")
        out[" ".join(key.split())] = replacement
    if len(out) > MOST:
        raise ValueError(f"at most {MOST} entries")
    return tuple(out.items())


def entry_problem(key: object, replacement: object) -> str | None:
    """What is wrong with one entry, or None."""
    if not isinstance(key, str) or not isinstance(replacement, str):
        return "what to find and what to write are text"
    if not key.strip():
        return "what to find is empty"
    if len(key) > LONGEST or len(replacement) > LONGEST:
        return f"longer than {LONGEST} characters"
    if any(ch in key + replacement for ch in "\n\r\t\0"):
        return "holds a line break, a tab or a NUL"
    if not any(ch.isalnum() for ch in key):
        return "what to find has no letter or digit, so it is no word"
    return None


def mark(entries: Entries) -> str | None:
    """What the ledger keeps of a glossary: a hash of its entries (None: no glossary)."""
    if not entries:
        return None
    blob = json.dumps(entries, ensure_ascii=False).encode()
    return MARK + hashlib.sha256(blob).hexdigest()[:12]


def recorded(formats: Iterable[Any], entries: Entries) -> list[str]:
    """What a file's row keeps as its formats: each format, and the glossary's mark."""
    done = [str(getattr(f, "value", f)) for f in formats]
    glossed = mark(entries)
    return [*done, glossed] if glossed else done


def current(kept: str, formats: Iterable[Any], entries: Entries) -> bool:
    """Whether sidecars done with ``kept`` (the row's formats) serve ``formats`` with
    the glossary ``entries``: each format was written, and with this very glossary."""
    have = set(kept.split(","))
    wanted = recorded(formats, entries)
    marks = {item for item in have if item.startswith(MARK)}
    return set(wanted) <= have and marks == {m for m in wanted if m.startswith(MARK)}
