"""An endpoint as the config states it (``EndpointModel``, with what its models take,
``ModelModel``) and as the daemon uses it (``Endpoint``: named, its key read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from dropscribe.vocab.budget import Budget
from dropscribe.vocab.settings import MAX_SECONDS, Seconds, StrictModel, Timeout, http_url

ResponseFormat = Literal["json", "text", "verbose_json", "diarized_json", "srt", "vtt"]


class ModelModel(StrictModel):
    """What a model takes, for one the built-in table does not know (or knows wrongly)."""

    formats: Annotated[tuple[ResponseFormat, ...], Field(min_length=1)] | None = None
    timestamps: bool | None = None  # whether verbose_json/diarized_json answers carry times
    prompt: bool | None = None
    translate: bool | None = None
    chunking_strategy: bool | None = None  # send chunking_strategy=auto over 30 s
    max_seconds: Annotated[float, Field(gt=30, le=MAX_SECONDS)] | None = None


class EndpointModel(StrictModel):
    kind: Literal[
        "openai",
        "azure",
        "groq",
        "speaches",
        "localai",
        "vllm",
        "whispercpp",
        "gateway",
        "mistral",
        "together",
        "asr",
        "local",
        "chat",  # chat33: /chat/completions, for the steps after the transcript
    ] = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    timeout: Timeout = 600.0
    connect_timeout: Timeout = 10.0
    max_concurrency: Annotated[int, Field(ge=1, le=64)] | None = None
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    backoff_max: Timeout = 60.0
    pause_after_failures: Annotated[int, Field(ge=1)] = 5
    pause_seconds: Timeout = 30.0

    api_version: str = "2024-10-21"  # azure: the api-version query, or v1 for the v1 URL
    request_path: str | None = None  # a route other than audio/transcriptions (whispercpp)
    max_upload_bytes: Annotated[int, Field(ge=0)] | None = None  # 0: no limit
    max_answer_bytes: Annotated[int, Field(ge=1024)] = 64 * 2**20  # after decompression
    max_duration_seconds: Annotated[float, Field(gt=30, le=MAX_SECONDS)] | None = None
    audio_codec: Literal["opus", "mp3", "flac"] | None = None  # for re-encoded audio
    price_per_hour: Annotated[float, Field(ge=0)] | None = None  # USD an audio hour
    budget: Budget | None = None  # budget34: what it may cost a day and a month
    # kind: local (faster-whisper in this process)
    device: Literal["cpu", "cuda", "auto"] = "auto"  # auto: CUDA where there is one
    compute_type: str = "auto"  # auto: int8 on a CPU, float16 on CUDA
    cpu_threads: Annotated[int, Field(ge=0, le=256)] = 0
    batch_size: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = "auto"  # 1: sequential
    vad: bool = True  # transcribe only where the VAD hears speech
    unload_after_seconds: Seconds = 900.0  # 0: keep the model loaded
    # What models take, by name, over the built-in table (docs/engines.md, "Models").
    models: dict[str, ModelModel] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        return http_url(value)


class Endpoint(EndpointModel):
    """An endpoint as the daemon uses it: the config's entry, named, with its key read,
    its URL without a trailing slash and its concurrency decided (``settings.parse``)."""

    name: str
    base_url: str = ""  # "" only for kind: local
    api_key: str | None = Field(default=None, repr=False)
    max_concurrency: Annotated[int, Field(ge=1)] = 4

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        return value if value == "" else http_url(value)
