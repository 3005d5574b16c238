"""``glossary_file:``, a glossary kept in a file of its own, read like every file the
config names (``files.read``: a regular file, never a FIFO or a device, at most 1 MiB)
and checked line by line, each problem with the file and line.

One entry a line: what to find, a tab, what to write instead (a spreadsheet's "save as
tab-separated" writes this). Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropscribe.config import files
from dropscribe.vocab import glossary

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.config.locate import KeyPath


def read(model: Any, values: dict[str, Any], base: Path, where: KeyPath, problem: Any) -> None:
    """The level's ``glossary_file`` read into ``values["glossary"]``, every problem told."""
    name: str | None = getattr(model, "glossary_file", None)
    if name is None:
        return
    at = (*where, "glossary_file")
    if "glossary" in values:
        problem(where, "give glossary or glossary_file, not both")
        return
    if (read := files.text(name, base, at, problem)) is None:
        return
    path, text = read
    entries, errors = parsed(text)
    for line, message in errors:
        problem(at, f"{path}:{line}: {message}")
    if len(entries) > glossary.MOST:
        problem(at, f"{path}: at most {glossary.MOST} entries")
    elif not errors:
        values["glossary"] = glossary.checked(entries)


def parsed(text: str) -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    """The entries of a glossary file, and each line's problem (line number, message)."""
    entries: list[tuple[str, str]] = []
    errors: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            errors.append((number, "expected what to find, one tab, and what to write"))
            continue
        key, replacement = fields[0].strip(), fields[1].strip()
        if (problem := glossary.entry_problem(key, replacement)) is not None:
            errors.append((number, f"{key!r}: {problem}"))
            continue
        spaced = " ".join(key.split())
        if spaced in seen:
            errors.append((number, f"{key!r} is given again (first on line {seen[spaced]})"))
            continue
        seen[spaced] = number
        entries.append((key, replacement))
    return entries, errors
