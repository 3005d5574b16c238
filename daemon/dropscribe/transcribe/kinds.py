"""Pure: how each kind of endpoint wants a request shaped (PROTOCOL.md section 4).

Everything the servers agree on stays in ``http.py``; the differences live here,
one small function per kind, so that supporting a new server is a few lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dropscribe.vocab.settings import Task

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dropscribe.audio.voices import Voice
    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

# The kinds whose answers can say who speaks (PROTOCOL.md sections 6.1 and 6.2); on the
# OpenAI-shaped ones only with a diarizing model. min/max counts: together and asr only.
SPEAKING = {"openai", "azure", "gateway", "mistral", "together", "asr"}
COUNTED = {"together", "asr"}
KNOWN_VOICES = {"openai", "azure", "gateway"}  # known_speaker_names[] + references[]
MOST_BIAS = 100  # context_bias items sent at most
# Choices a kind never sends as such: a refusal naming one is not about this request,
# and is not learned (Mistral takes no response_format or prompt; asr gets output=json).
UNSENT = {
    "mistral": {"response_format", "prompt", "chunking_strategy"},
    "asr": {"response_format", "chunking_strategy"},
}

MIB = 1024 * 1024
HEADROOM = 256 * 1024  # multipart framing and form fields, inside the request limit

# The largest audio file each kind accepts in one request, when the config does not say.
UPLOAD_LIMITS = {
    "openai": 25 * MIB - HEADROOM,  # 26,214,400 bytes of request body
    "azure": 25 * MIB - HEADROOM,
    "groq": 25 * MIB - HEADROOM,  # the free tier; the dev tier allows 100 MB
    "localai": 15 * MIB - HEADROOM,  # LOCALAI_UPLOAD_LIMIT's default
    "vllm": 25 * MIB - HEADROOM,  # VLLM_MAX_AUDIO_CLIP_FILESIZE_MB's default
    "gateway": 25 * MIB - HEADROOM,  # usually fronting OpenAI
}


# The file types each kind takes as they are (by extension); None: whatever FFmpeg reads.
SEED_FORMATS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm"})
ACCEPTED: dict[str, frozenset[str] | None] = {
    "openai": SEED_FORMATS,
    "azure": SEED_FORMATS,
    "groq": SEED_FORMATS,
    "gateway": SEED_FORMATS,
    "whispercpp": frozenset({"wav", "mp3", "flac"}),  # miniaudio, without --convert
}

# What re-encoded audio is sent as: whisper.cpp's decoders know no Opus.
DEFAULT_CODEC = {"whispercpp": "mp3"}


@dataclass(frozen=True)
class Shape:
    """One request: where it goes, with which query, headers and form fields."""

    path: str
    fields: dict[str, str | list[str]]  # a list: the field repeated (known_speaker_names[])
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    file_field: str = "file"  # the multipart name of the audio (whisper-asr-webservice: audio_file)


def upload_limit(endpoint: Endpoint) -> int | None:
    """Bytes one upload may carry; None for no limit (``max_upload_bytes: 0``)."""
    if endpoint.max_upload_bytes is not None:
        return endpoint.max_upload_bytes or None
    return UPLOAD_LIMITS.get(endpoint.kind)


def accepts(endpoint: Endpoint, extension: str) -> bool:
    """Whether the endpoint takes a file of this type as it is."""
    formats = ACCEPTED.get(endpoint.kind)
    return formats is None or extension.lower() in formats


def audio_codec(endpoint: Endpoint) -> str:
    return endpoint.audio_codec or DEFAULT_CODEC.get(endpoint.kind, "opus")


def auth_headers(endpoint: Endpoint) -> dict[str, str]:
    if not endpoint.api_key:
        return {}
    if endpoint.kind == "azure":
        return {"api-key": endpoint.api_key}
    return {"Authorization": f"Bearer {endpoint.api_key}"}


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


def _mistral(endpoint: Endpoint, settings: FolderSettings, ask: Ask) -> Shape:
    """No response_format and no prompt: the prompt's words are context_bias. Segment
    times only: Voxtral 3 refuses word times (PROTOCOL.md 7.3)."""
    out: dict[str, str | list[str]] = {"model": settings.model}
    if settings.language and ask.language:
        out["language"] = settings.language
    if settings.temperature is not None:
        out["temperature"] = f"{settings.temperature:g}"
    if ask.granularities:
        out["timestamp_granularities"] = "segment"
    if settings.speakers:
        out["diarize"] = "true"
    if bias := context_bias(settings.prompt, settings.vocabulary):
        out["context_bias"] = bias
    return Shape(endpoint.request_path or "audio/transcriptions", out)


def _asr(endpoint: Endpoint, settings: FolderSettings) -> Shape:
    """Options in the query string; the audio in a field of its own name."""
    params = {"output": "json", "task": settings.task.value, "word_timestamps": "true"}
    params["vad_filter"] = "true"
    if settings.language:
        params["language"] = settings.language
    if prompt := prompt_with_vocabulary(settings):
        params["initial_prompt"] = prompt
    if settings.speakers:
        params |= {"diarize": "true", **counts(settings)}
    return Shape(endpoint.request_path or "asr", {}, params, file_field="audio_file")


def shape(  # noqa: PLR0912 - one case per kind, by design
    endpoint: Endpoint, settings: FolderSettings, ask: Ask, voices: Sequence[Voice] = ()
) -> Shape:
    """The request for one file with these settings on this endpoint; ``voices`` are
    known speakers (name and a data URL of a clip), for the kinds that take them."""
    route = "audio/translations" if settings.task is Task.TRANSLATE else "audio/transcriptions"
    fields = openai_fields(settings, ask)
    translate = settings.task is Task.TRANSLATE
    if voices and endpoint.kind in KNOWN_VOICES:
        fields["known_speaker_names[]"] = [v.name for v in voices]
        fields["known_speaker_references[]"] = [v.data_url for v in voices]
    match endpoint.kind:
        case "mistral":
            return _mistral(endpoint, settings, ask)
        case "asr":
            return _asr(endpoint, settings)
        case "together":
            if settings.speakers:
                fields |= {"diarize": "true", **counts(settings)}
            return Shape(endpoint.request_path or route, fields)
        case "azure":
            # Classic: the deployment in the path, api-version in the query. v1: like OpenAI.
            if endpoint.api_version == "v1":
                return Shape(f"openai/v1/{route}", fields)
            del fields["model"]
            return Shape(
                f"openai/deployments/{settings.model}/{route}",
                fields,
                params={"api-version": endpoint.api_version},
            )
        case "groq":
            if translate:
                fields["language"] = "en"  # Groq's translations accept only en
            return Shape(route, fields)
        case "localai":
            # No /translations route: a form flag on the transcription route instead.
            if translate:
                fields["translate"] = "true"
            return Shape(endpoint.request_path or "audio/transcriptions", fields)
        case "whispercpp":
            # /inference by default; the server's language default is en, so say auto.
            fields.pop("model")
            fields.pop("timestamp_granularities[]", None)
            fields["language"] = settings.language or "auto"
            if translate:
                fields["translate"] = "true"
            return Shape(endpoint.request_path or "inference", fields)
        case _:
            return Shape(endpoint.request_path or route, fields)
