"""OpenAI's own API (PROTOCOL.md sections 1, 6.1, 7): 26,214,400 bytes of request body."""

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, SEED_FORMATS, Kind

KIND = Kind(
    "openai",
    upload_limit=25 * MIB - HEADROOM,
    accepted=SEED_FORMATS,
    speaking=True,
    known_voices=True,
)
