"""Pure: what a server's error answer says of a model: a field it refuses (kept as an
``Item`` of ``models``, for a day: ``limits.py``), or that the model itself is gone.

Only words that refuse count: a message that merely echoes our request (a proxy's, a
validation error's input) teaches nothing (learned20)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dropscribe.transcribe.models import (
    CHUNKING,
    CHUNKING_REQUIRED,
    GRANULARITIES,
    LANGUAGE_WITH_TIMES,
    PROMPT,
    TIMED_FORMATS,
    Item,
)

if TYPE_CHECKING:
    from dropscribe.transcribe.models import Ask


# ------------------------------------------------------------------ refusals

_DURATION = re.compile(r"longer than ([0-9]+(?:\.[0-9]+)?) seconds", re.IGNORECASE)
_NAMED = ("response_format", "timestamp_granularities", "chunking_strategy", "prompt")
# How servers refuse a field (PROTOCOL.md 6.1, 6.2, 7.2, 7.3): OpenAI's "is not
# compatible with" and "Unsupported parameter", vLLM's "Currently do not support",
# Mistral's "Extra inputs are not permitted", "chunking_strategy is required".
_REFUSING = re.compile(
    r"not (?:supported|compatible|permitted|allowed|recognized|accepted)|unsupported"
    r"|(?:do|does|cannot|can't|won't) (?:not )?(?:support|accept|be used)|only supports?"
    r"|unknown|unrecognized|unexpected|extra inputs|invalid|requires?\b|is required",
    re.IGNORECASE,
)
# A field we send written as a key (``response_format=…``, ``"model": …``; not a
# validation error's ``body.prompt: Extra inputs…``): a message holding two is the
# request echoed (a proxy's, a validation error's input), not a server saying which
# field it refuses.
_AS_KEY = re.compile(
    r"""(?<![.\w])(model|response_format|timestamp_granularities|prompt|chunking_strategy|language"""
    r"""|temperature)\b["']?\s*[:=]\s*[\[{"'\w]""",
    re.IGNORECASE,
)


def echoes(message: str) -> bool:
    """Whether ``message`` repeats our request rather than refusing a field of it."""
    return len({m.group(1).lower() for m in _AS_KEY.finditer(message)}) >= 2


def refusal(status: int | None, param: str | None, message: str, sent: Ask) -> Item | None:
    """What a 400 (or a FastAPI 422) says the (endpoint, model) pair does not take, as an
    Item to keep; None when it is about the file or the request as a whole, or when its
    words only echo our request (a refusal is kept for a day: ``limits.py``)."""
    if status not in {400, 422}:
        return None
    text = message.lower()
    if match := _DURATION.search(text):
        return Item("max_seconds", f"{float(match.group(1)):g}")
    named = param if param in _NAMED else None  # the server's own word for it
    if named is None and (echoes(text) or not _REFUSING.search(text)):
        return None
    if sent.pairs_language_with_times and "language" in text and "timestamp" in text:
        return LANGUAGE_WITH_TIMES  # the pair, not either alone (Voxtral 3)
    if named is None:
        # the field the message is about: the first one it names
        found = [(text.find(p), p) for p in _NAMED if p in text]
        if prompt := re.search(r"\bprompt\b", text):
            found.append((prompt.start(), "prompt"))
        if sent.response_format in TIMED_FORMATS and sent.response_format in text:
            # the timed format sent, named alone (vLLM's "do not support verbose_json")
            found.append((text.find(sent.response_format), "response_format"))
        named = min(found)[1] if found else None
    match named:
        case "response_format":
            return Item("response_format", sent.response_format)
        case "timestamp_granularities" if sent.granularities:
            return GRANULARITIES
        case "prompt" if sent.prompt:
            return PROMPT
        case "chunking_strategy":
            return CHUNKING if sent.chunking else CHUNKING_REQUIRED
    return None


# ------------------------------------------------------------------ gone models

# What servers say of a model that is shut down or withdrawn (PROTOCOL.md 7.1): OpenAI's
# 404 model_not_found, a gateway's "no available channels for model whisper-1".
_GONE_WORDS = re.compile(
    r"no available channels?|deprecated|shut ?down|decommissioned|retired|no longer"
    r"|not (?:found|available|supported)|does not exist|unavailable|withdrawn",
    re.IGNORECASE,
)


def gone(status: int | None, code: str | None, message: str, model: str) -> bool:
    """Whether an error answer says the model itself is gone, rather than the server
    being down: a 404 ``model_not_found``, or any 4xx/5xx whose words name the model as
    unavailable (the 503 of a gateway that withdrew it is not an outage that passes)."""
    if status is None or status < 400:
        return False
    if status == 404 and code == "model_not_found":
        return True
    text = message[:2000]
    return bool(model) and model.lower() in text.lower() and bool(_GONE_WORDS.search(text))
