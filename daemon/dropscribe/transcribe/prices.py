"""Pure: what an hour of audio costs on an endpoint, for ``dropscribe rehearse``.

The list prices people compare (PROTOCOL.md 7.5, December 2026) are defaults a user
overrides with ``price_per_hour:``, never the truth: check the provider's page.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dropscribe.vocab.endpoints import Endpoint

# (kinds, model pattern, USD per audio hour)
LIST_PRICES: tuple[tuple[frozenset[str], re.Pattern[str], float], ...] = (
    (frozenset({"openai", "azure", "gateway"}), re.compile(r"^gpt-transcribe"), 0.27),
    (frozenset({"openai", "azure", "gateway"}), re.compile(r"^gpt-4o-mini-transcribe"), 0.18),
    (frozenset({"openai", "azure", "gateway"}), re.compile(r"^gpt-4o-transcribe"), 0.36),
    (frozenset({"openai", "azure", "gateway"}), re.compile(r"^whisper-1$"), 0.36),
    (frozenset({"groq"}), re.compile(r"whisper-large-v3-turbo"), 0.04),
    (frozenset({"groq"}), re.compile(r"whisper-large-v3$"), 0.111),
)


def per_hour(endpoint: Endpoint, model: str) -> float | None:
    """USD an audio hour: the endpoint's ``price_per_hour``, else the list price we
    know, 0 on this machine, None when unknown."""
    if endpoint.price_per_hour is not None:
        return endpoint.price_per_hour
    if endpoint.kind == "local":
        return 0.0
    for kinds, pattern, price in LIST_PRICES:
        if endpoint.kind in kinds and pattern.search(model.lower()):
            return price
    return None
