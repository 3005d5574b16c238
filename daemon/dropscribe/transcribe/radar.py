"""Pure: the deprecation radar. Which models in use a server says it will shut down,
and when to say so.

OpenAI's ``GET /v1/models`` carries an optional ``shutdown_date`` per model, "to monitor
model shutdowns programmatically" (PROTOCOL.md 7.1); other servers omit it, which
means unknown, never "no shutdown". What the server says wins over the table below,
which holds the shutdowns announced before a server could be asked (an endpoint
that cannot list its models, or a machine that has not yet asked).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

# Announced on OpenAI's deprecations page on 2026-08-26 (PROTOCOL.md 7.1).
OPENAI_SHUTDOWN = dt.date(2027, 2, 26)
ANNOUNCED: tuple[tuple[re.Pattern[str], dt.date], ...] = (
    (re.compile(r"^whisper-1$"), OPENAI_SHUTDOWN),
    (re.compile(r"^gpt-4o(-mini)?-transcribe(-diarize)?(-\d{4}-\d{2}-\d{2})?$"), OPENAI_SHUTDOWN),
)
OPENAI_SHAPED = {"openai", "azure", "gateway"}
# The kinds whose servers answer GET {base}/models in OpenAI's list shape.
LISTING = {"openai", "azure", "gateway", "groq", "together", "mistral", "speaches", "vllm"}
LISTING_BYTES = 4 * 1024 * 1024  # a catalogue larger than this is not read
SOON_DAYS = 30  # in the last month before a shutdown, a warning every day
DAY = 86_400.0

# What a person can move to (docs/engines.md, "Models come and go").
INSTEAD = {
    "openai": "gpt-transcribe (text only: timestamps come from the local timing, or use"
    " Mistral, Together or whisper-asr-webservice for speakers and times)",
}


@dataclass(frozen=True)
class Retiring:
    """A model in use that its server (or its maker) says will be shut down."""

    endpoint: str
    model: str
    shutdown: dt.date
    source: str  # "server": its GET /models said so; "announced": the table above

    def days_left(self, today: dt.date) -> int:
        return (self.shutdown - today).days

    def what_to_do(self, kind: str) -> str:
        instead = INSTEAD.get("openai" if kind in OPENAI_SHAPED else kind)
        move = f"move to {instead}" if instead else "move the folders to another model"
        return (
            f"{move}: set model: under the folders that use endpoint {self.endpoint!r}"
            " (check-config and status list what retires when)"
        )


def announced(kind: str, model: str) -> dt.date | None:
    """The shutdown date announced for ``model`` on an endpoint of ``kind``, if any."""
    if kind not in OPENAI_SHAPED:
        return None
    name = model.lower()
    return next((date for pattern, date in ANNOUNCED if pattern.search(name)), None)


def listed(answer: Any) -> dict[str, dt.date | None]:
    """``{model id: shutdown date or None}`` from a ``GET /models`` answer; a model the
    answer lists without the field is left out (unknown), as is anything malformed."""
    found: dict[str, dt.date | None] = {}
    items = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        return found
    for item in items[:10_000]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        if "shutdown_date" not in item:
            continue
        value = item["shutdown_date"]
        if value is None:
            found[item["id"]] = None  # the server says: no shutdown planned
        elif isinstance(value, str):
            try:
                found[item["id"]] = dt.date.fromisoformat(value[:10])
            except ValueError:
                continue
    return found


def retiring(
    endpoint: str, kind: str, models: set[str], said: dict[str, dt.date | None] | None
) -> list[Retiring]:
    """The models in use on one endpoint that will be shut down: what its server ``said``
    (None: it could not be asked) where it said anything, else what was announced."""
    out = []
    for model in sorted(models):
        if said is not None and model in said:
            date = said[model]
            if date is not None:
                out.append(Retiring(endpoint, model, date, "server"))
        elif (date := announced(kind, model)) is not None:
            out.append(Retiring(endpoint, model, date, "announced"))
    return out


def worth_saying(found: Retiring, today: dt.date, *, first: bool) -> bool:
    """At start, and every day of the last month before the shutdown (and once a week
    before that): often enough to be seen, not so often that it is ignored."""
    left = found.days_left(today)
    return first or left <= SOON_DAYS or left % 7 == 0
