"""Where in a YAML file each key is, and pydantic's errors turned into located problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from dropscribe.errors import Problem

if TYPE_CHECKING:
    from pydantic import ValidationError

KeyPath = tuple[str | int, ...]


def index_lines(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], problems: list[Problem], fname: str
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    Problem(
                        fname,
                        key_node.start_mark.line + 1,
                        dotted((*path, key)),
                        "duplicate key (YAML would silently keep the last one)",
                    )
                )
            seen.add(key)
            index_lines(value_node, (*path, key), lines, problems, fname)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            index_lines(item, (*path, index), lines, problems, fname)


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
