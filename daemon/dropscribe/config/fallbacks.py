"""The config's checks of several endpoints per folder (``vocab/fallbacks.py``): every
endpoint of a list is defined, a ``model:`` mapping names only endpoints of the folder's
list (with the name it may be a typo of) and gives each of them a model; each endpoint
of a list is checked with its own model as a single one is."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from dropscribe.vocab import fallbacks

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dropscribe.config.locate import KeyPath
    from dropscribe.vocab.config import Layer
    from dropscribe.vocab.endpoints import Endpoint

    Report = Callable[[KeyPath, str], None]
    Check = Callable[[Endpoint, dict[str, Any], KeyPath, Report], None]


def used(defaults: Any, inboxes: Iterable[Any]) -> set[str]:
    """The endpoints some level lists after its first (their keys must be read too)."""
    levels = [defaults, *(level for inbox in inboxes if inbox for level in (inbox, *inbox.rules))]
    return {name for level in levels for name in level.fallbacks}


def meant(name: str, known: Iterable[str]) -> str:
    """ "; did you mean 'groq'?" when a known name is close to ``name``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def check(
    endpoints: dict[str, Endpoint],
    known: set[str],
    layers: list[Layer],
    where: KeyPath,
    problem: Report,
    engines: Check | None,
) -> None:
    """Every problem of the lists and mappings of an inbox (``layers``: the defaults, the
    inbox, its rules), each at the level that says it."""
    merged = fallbacks.merged([layers[0].values, layers[1].values])
    levels: list[tuple[dict[str, Any], dict[str, Any], KeyPath]] = [(merged, merged, where)]
    levels += [
        (fallbacks.merged([merged, rule.values]), rule.values, (*where, "rules", index))
        for index, rule in enumerate(layers[2:])
    ]
    for values, own, at in levels:
        said = at
        if at == where and "models" not in layers[1].values and "models" in layers[0].values:
            said = ("defaults",)
        mapping = at == where or "models" in own  # a rule is told only of its own mapping
        _level(endpoints, known, fallbacks.resolved(values), said, problem, engines, mapping)


def _level(
    endpoints: dict[str, Endpoint],
    known: set[str],
    values: dict[str, Any],
    at: KeyPath,
    problem: Report,
    engines: Check | None,
    mapping: bool,  # whether to check the model: mapping too
) -> None:
    first, rest = values.get("endpoint"), tuple(values.get("fallbacks") or ())
    if not isinstance(first, str):
        return
    names = [first, *rest]
    for name in rest:
        if name not in known:
            problem(
                (*at, "endpoint"),
                f"unknown endpoint {name!r}; defined: {', '.join(known)}{meant(name, known)}",
            )
    mapped = dict(values.get("models") or ())
    for name in mapped if mapping else ():
        if name not in names:
            problem(
                (*at, "model", name),
                f"endpoint {name!r} is not in this folder's endpoint list"
                f" ({', '.join(names)}){meant(name, names)}",
            )
    missing = [name for name in names if mapped and name not in mapped and name in known]
    if missing:
        problem(
            (*at, "model"),
            f"gives no model for endpoint {', '.join(map(repr, missing))}; add"
            f" {missing[0]}: <model> (model: maps each endpoint of the list to its model)",
        )
    if engines is None:
        return
    for name, model in fallbacks.chain(first, str(values.get("model", "")), rest, mapped)[1:]:
        if (endpoint := endpoints.get(name)) is not None and model:
            # fallback34c: a later endpoint that labels no speakers takes the file degraded
            shown = {**values, "endpoint": name, "model": model, "speakers": False, "voices": None}
            engines(endpoint, shown, at, problem)
