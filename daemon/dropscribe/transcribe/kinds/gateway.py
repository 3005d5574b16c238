"""A gateway in front of OpenAI (OpenRouter, a LiteLLM proxy): OpenAI's shape and limits."""

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, SEED_FORMATS, Kind

KIND = Kind(
    "gateway",
    upload_limit=25 * MIB - HEADROOM,  # usually fronting OpenAI
    accepted=SEED_FORMATS,
    speaking=True,
    known_voices=True,
)
