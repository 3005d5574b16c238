"""Pure: the OpenAI form for one file's settings, which most kinds take as it is and
the others start from (PROTOCOL.md sections 1 and 7.2)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dropscribe.vocab.settings import Task

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.settings import FolderSettings

MOST_BIAS = 100  # context_bias items sent at most


def prompt_with_vocabulary(settings: FolderSettings) -> str | None:
    """The prompt, with the folder's vocabulary after it: Whisper spells a name the way
    its prompt does (OpenAI's prompting guide), so a list of names is the classic way."""
    if not settings.vocabulary:
        return settings.prompt
    terms = ", ".join(settings.vocabulary) + "."
    return f"{settings.prompt} {terms}" if settings.prompt else terms


def openai_fields(settings: FolderSettings, ask: Ask) -> dict[str, str | list[str]]:
    """The OpenAI form: what the model takes (``ask``); unset settings left to the server."""
    if ask.listed:
        return _listed_fields(settings, ask)
    fields: dict[str, str | list[str]] = {
        "model": settings.model,
        "response_format": ask.response_format,
    }
    if ask.granularities and settings.task is Task.TRANSCRIBE:  # /translations has none
        fields["timestamp_granularities[]"] = "segment"
    if settings.language and ask.language and settings.task is Task.TRANSCRIBE:
        fields["language"] = settings.language
    prompt = prompt_with_vocabulary(settings)
    if prompt and ask.prompt:
        fields["prompt"] = prompt
    if ask.chunking:
        fields["chunking_strategy"] = "auto"  # the bare string: the object form was refused
    if settings.temperature is not None:
        fields["temperature"] = f"{settings.temperature:g}"
    return fields


def _listed_fields(settings: FolderSettings, ask: Ask) -> dict[str, str | list[str]]:
    """gpt-transcribe's form (PROTOCOL.md 7.2): languages[] and keywords[]; no language,
    temperature or response_format, as the clients that target it send."""
    fields: dict[str, str | list[str]] = {"model": settings.model}
    if settings.language:
        fields["languages[]"] = [settings.language]
    elif settings.languages:  # language: [en, de], not detected here (issue 32)
        fields["languages[]"] = list(settings.languages)
    if settings.vocabulary:
        fields["keywords[]"] = list(settings.vocabulary)
    if settings.prompt and ask.prompt:
        fields["prompt"] = settings.prompt
    if ask.chunking:
        fields["chunking_strategy"] = "auto"
    return fields


def counts(settings: FolderSettings) -> dict[str, str]:
    """min_speakers / max_speakers, where the folder says them."""
    said = settings.speakers
    if isinstance(said, bool):
        return {}
    out = {"min_speakers": said.min, "max_speakers": said.max}
    return {k: str(v) for k, v in out.items() if v is not None}


def context_bias(prompt: str | None, vocabulary: Sequence[str] = ()) -> list[str]:
    """Mistral's context_bias: the vocabulary's words first, then the prompt's, each
    without spaces or commas."""
    text = " ".join([*vocabulary, prompt or ""])
    words = (w.strip(".;:!?()[]\"'") for w in re.split(r"[\s,]+", text))
    return list(dict.fromkeys(w for w in words if w))[:MOST_BIAS]
