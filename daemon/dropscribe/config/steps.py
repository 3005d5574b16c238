"""The steps' settings checked as the config is read (issue 33): a summary's prompt_file
read, the chat endpoints named known and of ``kind: chat``, and their keys wanted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropscribe.config import files
from dropscribe.vocab.steps import SummaryModel

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.config.locate import KeyPath
    from dropscribe.config.schema import ConfigModel


def chat_endpoints(model: ConfigModel) -> set[str]:
    """The endpoints some level's ``chat:`` names (their keys must be at hand)."""
    levels = [model.defaults]
    for inbox in model.inboxes:
        if inbox is not None:
            levels += [inbox, *inbox.rules]
    return {level.chat.endpoint for level in levels if level.chat is not None}


def resolve(values: dict[str, Any], base: Path, where: KeyPath, problem: Any) -> None:
    """A level's step settings, in place: summary's prompt_file read into its prompt."""
    summary = values.get("summary")
    if not isinstance(summary, SummaryModel) or summary.prompt_file is None:
        return
    if summary.prompt is not None:
        problem((*where, "summary"), "give prompt or prompt_file, not both")
    at = (*where, "summary", "prompt_file")
    if (read := files.text(summary.prompt_file, base, at, problem)) is None:
        return
    prompt = read[1].strip()
    values["summary"] = summary.model_copy(update={"prompt": prompt, "prompt_file": None})


def check(model: ConfigModel, problem: Any) -> None:
    """Every ``chat:`` names a ``kind: chat`` endpoint; no transcription uses one."""
    kinds = {name: ep.kind for name, ep in model.endpoints.items()}
    places: list[tuple[KeyPath, Any]] = [(("defaults",), model.defaults)]
    for index, inbox in enumerate(model.inboxes):
        if inbox is not None:
            places.append((("inboxes", index), inbox))
            places += [(("inboxes", index, "rules", r), rule) for r, rule in enumerate(inbox.rules)]
    for where, level in places:
        if level.chat is not None:
            kind = kinds.get(level.chat.endpoint)
            if kind is None:
                known = ", ".join(kinds)
                problem(
                    (*where, "chat", "endpoint"),
                    f"unknown endpoint {level.chat.endpoint!r}; defined: {known}",
                )
            elif kind != "chat":
                problem(
                    (*where, "chat", "endpoint"),
                    f"endpoint {level.chat.endpoint!r} is kind: {kind}; steps need kind: chat",
                )
        if "endpoint" in level.model_fields_set and kinds.get(level.endpoint) == "chat":
            problem(
                (*where, "endpoint"),
                f"endpoint {level.endpoint!r} is kind: chat; it cannot transcribe"
                " (name it in chat:)",
            )
