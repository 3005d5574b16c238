"""The steps after the transcript, as the config states them (issue 33): where they run
(``chat:``), a summary (``summary:``) and translations (``translate_to:``). Each step's
own settings (``Step.shaping``) are what its stored result is keyed by, apart from the
transcript's: changing one re-runs that step, never the transcription."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    # As vocab/settings.py's (which imports this module): unknown keys refused, frozen.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")]


class ChatModel(StrictModel):
    """chat: which chat endpoint (``kind: chat``) and model a folder's steps use."""

    endpoint: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1, max_length=200)]
    context_tokens: Annotated[int, Field(ge=1024, le=10_000_000)] | None = None


class SummaryModel(StrictModel):
    """summary: its prompt (or a file holding it, read by config/) and its language."""

    prompt: Annotated[str, Field(min_length=1, max_length=20_000)] | None = None
    prompt_file: str | None = None
    language: Language | None = None


SUMMARY = "summary"
TRANSLATE = "translate"


@dataclass(frozen=True)
class Step:
    """One step of one file: its name (``summary``, ``translate:de``) and what shapes it."""

    name: str
    chat: ChatModel
    prompt: str | None = None
    language: str | None = None

    def shaping(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "endpoint": self.chat.endpoint,
            "model": self.chat.model,
            "prompt": self.prompt,
            "language": self.language,
        }

    def shaping_hash(self) -> str:
        blob = json.dumps(self.shaping(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def steps_of(
    chat: ChatModel | None, summary: bool | SummaryModel, translate_to: tuple[str, ...]
) -> list[Step]:
    """The steps a folder's settings ask for (none without ``chat:``)."""
    if chat is None:
        return []
    found: list[Step] = []
    if summary:
        model = summary if isinstance(summary, SummaryModel) else SummaryModel()
        found.append(Step(SUMMARY, chat, model.prompt, model.language))
    found += [Step(f"{TRANSLATE}:{lang}", chat, None, lang) for lang in translate_to]
    return found
