"""Key paths as the config's text spells them, and pydantic's errors turned into located
problems in plain words (``document.py`` notes the line of each key path): an unknown
key with the known one it is closest to, a mapping where a list belongs with the ``-``
it lacks."""

from __future__ import annotations

import difflib
import json
import typing
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dropscribe.config.keys import LONGEST
from dropscribe.errors import Problem

if TYPE_CHECKING:
    from pydantic import ValidationError

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{_name(part)}" if out else _name(part))
    return out


def _name(key: str) -> str:
    """A key as a problem shows it: in double quotes, escaped as YAML's own double
    quotes escape, where it would not read as itself on one line (empty, spaces around
    it, a line break of a ``? |`` block key, another control character); attack18: cut
    after ``keys.LONGEST`` characters (a ``? `` key of 900,000 was told whole: a line of
    900 kB in check-config and in the SIGHUP's event)."""
    if len(key) > LONGEST:
        key = key[: LONGEST - 1] + "…"
    if key and key.isprintable() and key == key.strip():
        return key
    quoted = json.dumps(key, ensure_ascii=False)
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in quoted)


def line_of(path: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def from_pydantic(
    exc: ValidationError,
    lines: dict[KeyPath, int],
    fname: str,
    model: type[BaseModel] | None = None,
) -> list[Problem]:
    """Each of pydantic's errors as a located problem; ``model`` (the one validated)
    names the keys an unknown key may be a typo of."""
    out = []
    for err in exc.errors(include_url=False):
        # Drop the tags pydantic adds for constrained/union members (e.g. "constrained-str").
        loc: KeyPath = tuple(p for p in err["loc"] if isinstance(p, int) or "-" not in p)
        match err["type"]:
            case "extra_forbidden":
                message = "unknown key" + _meant(loc, model)
            case "missing":
                message = "required key is missing"
            case "list_type" | "tuple_type" | "set_type" if isinstance(err.get("input"), dict):
                first = next(iter(err["input"]), "key")
                message = (
                    "is a mapping, but should be a list: start each item with '- '"
                    f" (e.g. '- {first}: ...' on the line below)"
                )
            case "model_type" | "dict_type" | "model_attributes_type":
                got = type(err.get("input")).__name__
                message = f"should be a mapping (key: value lines), not {_plain_type(got)}"
            case _:
                message = err["msg"].removeprefix("Value error, ")
                if err["type"] != "value_error" and "input" in err:
                    message += f" (got {err['input']!r})"
        out.append(Problem(fname, line_of(loc, lines), dotted(loc), message))
    return out


def _plain_type(name: str) -> str:
    return {"list": "a list", "tuple": "a list", "str": "text", "NoneType": "empty"}.get(
        name, f"a {name}"
    )


def _meant(loc: KeyPath, model: type[BaseModel] | None) -> str:
    """ ", did you mean `formats`?" for ``loc``'s last key, if a known key is close."""
    if model is None or not loc or not isinstance(loc[-1], str):
        return ""
    keys = known_keys(model, loc[:-1])
    close = difflib.get_close_matches(loc[-1], keys, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def known_keys(model: type[BaseModel], within: KeyPath) -> list[str]:
    """The keys the mapping at ``within`` (a key path inside ``model``) may hold."""
    at: Any = model
    for part in within:
        at = _step(at, part)
        if at is None:
            return []
    found = _model_in(at)
    if found is None:
        return []
    return [field.alias or name for name, field in found.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    """The type of ``annotation``'s member ``part`` (a field, a dict's value, an item)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in {list, tuple, set, frozenset} and args and isinstance(part, int):
        return args[0]
    for arg in args:  # a union (X | None): the first member that has ``part``
        if (inner := _step(arg, part)) is not None:
            return inner
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None
