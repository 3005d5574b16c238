"""Pure: several endpoints for one folder, as the config says them and as the settings keep
them. ``endpoint: [groq, openai, local]`` is kept as ``endpoint: groq`` (the first, which
every part of the daemon that sends reads) and ``fallbacks: (openai, local)``; ``model:
{groq: whisper-large-v3-turbo, local: tiny.en}`` as ``models`` (pairs) and ``model``, the
model of ``endpoint``. A level that names one endpoint (or one model) ends the list (the
mapping) of the levels above it (``merged``): a rule's ``endpoint: local`` means that
endpoint alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable


def taken_apart(data: Any) -> Any:
    """One level's (or the merged levels') values with a list of endpoints and a mapping of
    models taken apart into the fields ``FolderSettings`` keeps (see the module)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    endpoint = data.get("endpoint")
    if isinstance(endpoint, (list, tuple)):
        if not endpoint:
            raise ValueError("endpoint: lists no endpoint; name at least one")
        names = [str(name) for name in endpoint]
        if len(set(names)) < len(names):
            raise ValueError("endpoint: names an endpoint twice")
        data["endpoint"], data["fallbacks"] = names[0], tuple(names[1:])
    model = data.get("model")
    if isinstance(model, dict):
        if not model:
            raise ValueError("model: maps no endpoint to a model")
        data["models"] = tuple((str(k), v) for k, v in model.items())
        data["model"] = next(iter(model.values()))  # until the endpoint is known
    return resolved(data)


def merged(levels: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The levels' values, each over the ones before it; a level that names one endpoint
    (or one model) ends the list (the mapping) of the levels before it."""
    out: dict[str, Any] = {}
    for values in levels:
        if "endpoint" in values and "fallbacks" not in values:
            out.pop("fallbacks", None)
        if "model" in values and "models" not in values:
            out.pop("models", None)
        out.update(values)
    return out


def resolved(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with ``model`` the model its ``endpoint`` has in ``models``, if any."""
    mapped = dict(values.get("models") or ())
    endpoint = values.get("endpoint")
    if isinstance(endpoint, str) and isinstance(mapped.get(endpoint), str):
        return {**values, "model": mapped[endpoint]}
    return values


def chain(
    endpoint: str, model: str, fallbacks: tuple[str, ...], models: Any
) -> list[tuple[str, str]]:
    """Every (endpoint, model) a folder's file may go to, in order."""
    mapped = dict(models or ())
    return [(endpoint, model)] + [(name, str(mapped.get(name, model))) for name in fallbacks]
