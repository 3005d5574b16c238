"""Key paths as the config's text spells them, and pydantic's errors turned into located
problems (``document.py`` notes the line of each key path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.errors import Problem

if TYPE_CHECKING:
    from pydantic import ValidationError

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def line_of(path: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def from_pydantic(exc: ValidationError, lines: dict[KeyPath, int], fname: str) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        # Drop the tags pydantic adds for constrained/union members (e.g. "constrained-str").
        loc: KeyPath = tuple(p for p in err["loc"] if isinstance(p, int) or "-" not in p)
        match err["type"]:
            case "extra_forbidden":
                message = "unknown key"
            case "missing":
                message = "required key is missing"
            case _:
                message = err["msg"].removeprefix("Value error, ")
                if err["type"] != "value_error" and "input" in err:
                    message += f" (got {err['input']!r})"
        out.append(Problem(fname, line_of(loc, lines), dotted(loc), message))
    return out
