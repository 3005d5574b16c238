"""Pure: what the endpoint that takes a file (one of its folder's list) cannot give of
what the folder asks: speaker labels from an endpoint or model that labels none, times
from a model that gives none where this machine cannot time the words either. The file
is still transcribed there; ``jobs/cascade.py`` logs ``file.degraded`` and keeps the
why in the ledger's ``sends`` row, which ``explain`` shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.timing import timed
from dropscribe.transcribe import kinds, models

if TYPE_CHECKING:
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def labels_speakers(endpoint: Endpoint, caps: models.Caps) -> bool:
    """Whether the model of ``caps`` on ``endpoint`` labels speakers (as ``check-config``
    judges)."""
    if endpoint.kind == "local" or endpoint.kind not in kinds.SPEAKING:
        return False
    return endpoint.kind not in models.OPENAI_SHAPED or caps.timed == "diarized_json"


def lacking(endpoint: Endpoint, settings: FolderSettings, caps: models.Caps) -> dict[str, str]:
    """What of ``settings`` (its model's) ``endpoint`` cannot give, each with why."""
    out: dict[str, str] = {}
    if settings.speakers and not labels_speakers(endpoint, caps):
        out["speakers"] = (
            f"endpoint {endpoint.name} ({settings.model}) labels no speakers: the"
            " transcript has none"
        )
    if any(f.timed for f in settings.formats) and caps.timed is None:
        why = timed.unusable(settings)
        if why is not None:
            out["timestamps"] = (
                f"model {settings.model} gives no times and they cannot be had on this"
                f" machine ({why}): times are those of short spans, each sent alone"
            )
    return out


def unspoken(settings: FolderSettings) -> FolderSettings:
    """``settings`` asking no speakers (for an endpoint that labels none)."""
    return settings.model_copy(update={"speakers": False, "voices": None})
