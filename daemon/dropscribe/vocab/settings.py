"""The settings one file is transcribed with (``FolderSettings``) and their parts: the
sidecar formats, the task, speakers, subtitle rules, the hook. ``config/`` validates
each level of the YAML against these and merges them; the rest of the daemon reads them.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import urllib.parse
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dropscribe.vocab import fallbacks as several
from dropscribe.vocab import glossary, language, tracks
from dropscribe.vocab.budget import Budget
from dropscribe.vocab.route import Deadline, Route
from dropscribe.vocab.steps import ChatModel, Language, SummaryModel

# The upload formats of the seed page, plus the Ogg spellings users drop in.
AUDIO_EXTENSIONS = (
    "flac",
    "mp3",
    "mp4",
    "mpeg",
    "mpga",
    "m4a",
    "ogg",
    "wav",
    "webm",
    "oga",
    "opus",
    # Containers and codecs people record in that no endpoint takes by name, decoded with
    # PyAV and re-encoded for the endpoint: Matroska from OBS and screen recorders,
    # QuickTime from phones and cameras, AAC/AMR/3GP from call recorders, AIFF, WMA.
    "mkv",
    "mka",
    "mov",
    "m4v",
    "aac",
    "amr",
    "3gp",
    "aif",
    "aiff",
    "wma",
)


class Format(StrEnum):
    TXT = "txt"
    JSON = "json"
    SRT = "srt"
    VTT = "vtt"
    VERBOSE_JSON = "verbose_json"
    LRC = "lrc"
    TSV = "tsv"
    MD = "md"

    @property
    def extension(self) -> str:
        """The file extension of this sidecar (``json`` and ``verbose_json`` must differ)."""
        return "verbose.json" if self is Format.VERBOSE_JSON else self.value

    @property
    def timed(self) -> bool:
        """Whether rendering this format needs segment timestamps."""
        return self in {Format.SRT, Format.VTT, Format.VERBOSE_JSON, Format.LRC, Format.TSV}


class Task(StrEnum):
    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"


class StrictModel(BaseModel):
    # No infinite or NaN number anywhere: a timeout of .inf never ends, a NaN compares false.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# The longest any wait may be: a year. Past about 9.2e9 s no lock, event or socket of
# Python's can wait at all (OverflowError), and a reload must not take such a number.
MAX_SECONDS = 365 * 86400.0
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]  # 0 allowed
Timeout = Annotated[float, Field(gt=0, le=MAX_SECONDS)]  # above 0


class SubtitleRules(StrictModel):
    """How srt, vtt and lrc cues are cut (``outputs/cues.py``), and txt/md paragraphs."""

    line_length: Annotated[int, Field(ge=10, le=200)] = 42  # characters a line
    lines: Annotated[int, Field(ge=1, le=4)] = 2  # lines a cue
    max_seconds: Annotated[float, Field(ge=1, le=30)] = 7.0  # the longest a cue shows
    max_cps: Annotated[float, Field(ge=5, le=100)] = 20.0  # characters a second to read
    min_gap: Annotated[float, Field(ge=0, le=1)] = 0.08  # seconds between two cues
    paragraph_seconds: Timeout = 1.5  # a pause that starts a paragraph


class SpeakerCount(StrictModel):
    """speakers: how many people to expect, for endpoints that take it."""

    min: Annotated[int, Field(ge=1, le=32)] | None = None
    max: Annotated[int, Field(ge=1, le=32)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SpeakerCount:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be over max")
        return self


def http_url(value: str | None) -> str | None:
    """``value``, if it is a URL httpx will take (a port in range, no control character)."""
    if value is None:
        return value
    import httpx  # noqa: PLC0415 - only a config that names a URL pays for it

    usable = re.fullmatch(r"https?://[^\s/]+(/\S*)?", value) is not None
    try:
        urllib.parse.urlsplit(value).port  # noqa: B018 - a port out of range raises
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL):
        usable = False
    if not usable:
        raise ValueError("must be an http:// or https:// URL such as https://api.openai.com/v1")
    return value


class HookModel(StrictModel):
    """What to run when a file is finished (done or quarantined)."""

    command: Annotated[tuple[str, ...], Field(min_length=1)] | None = None
    webhook: str | None = None
    timeout: Timeout = 30.0

    @field_validator("webhook")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        return http_url(value)


TIMED_RESPONSE = "verbose_json"
PLACEHOLDERS = ("stem", "name", "ext", "language", "model", "task", "source_ext")


class FolderSettings(StrictModel):
    """The settings one file is transcribed with, defined here once: each level of the
    config (``defaults:``, an inbox, a rule) is validated against these fields and sets
    some of them (its ``model_fields_set``); a file's settings are the levels that apply
    to it, merged in order (``rules.effective``)."""

    endpoint: str = ""  # no default in effect: settings.parse requires some level to set it
    model: str = ""  # ditto
    language: str | None = None
    prompt: str | None = None
    # Names and terms the recordings use: each kind gets them where it takes them
    # (gpt-transcribe's keywords[], Mistral's context_bias, the prompt, local hotwords).
    vocabulary: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = ()
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    task: Task = Task.TRANSCRIBE
    formats: Annotated[tuple[Format, ...], Field(min_length=1)] = (Format.TXT,)
    output_dir: Path | None = None
    name_template: str = "{stem}.{ext}"
    settle_seconds: Seconds = 5.0
    rerun_on_change: bool = False
    after: Literal["keep", "move", "delete"] = "keep"
    hook: HookModel | None = None
    # Recordings that must be re-encoded (over a limit, video, a format the endpoint
    # refuses) are cut at silences into pieces of about this length.
    chunk_seconds: Annotated[float, Field(ge=30, le=86400)] = 600.0
    carry_prompt: bool = False
    subtitles: SubtitleRules = SubtitleRules()
    # Who speaks: ask the endpoint for speaker labels (true, or {min: 2, max: 4}).
    speakers: bool | SpeakerCount = False
    # A folder of 2-10 s clips named after people (voices/Ana.wav): labelled by name.
    voices: Path | None = None
    # Word times on this machine for answers without them (text-only models): on (None)
    # when dropscribe[local] is installed; the faster-whisper model (a name or a path).
    align: bool | None = None
    align_model: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\n]+$")] | None = (
        None
    )
    # chat33 (issue 33): steps after the transcript, on a kind: chat endpoint (vocab/steps.py).
    # Never part of shaping(): changing them re-runs a step, never the transcription.
    chat: ChatModel | None = None
    summary: bool | SummaryModel = False
    translate_to: tuple[Language, ...] = ()
    # tracks32 (issues 32.1, 33.2): which audio streams; the find -> replace list
    audio_track: int | str | tuple[int | str, ...] = 0
    glossary: tuple[tuple[str, str], ...] = ()

    @field_validator("audio_track", mode="before")
    @classmethod
    def _tracks(cls, value: Any) -> Any:
        return tracks.checked(value)

    @field_validator("glossary", mode="before")
    @classmethod
    def _glossary(cls, value: Any) -> Any:
        return glossary.checked(value)

    # issue 32, languages (language32): `language: [en, de]` or `auto` is spelled as
    # these two (vocab/language.py): detected before the settings are chosen, the
    # language found then stands in `language`. The model that detects: a faster-whisper
    # name or path (default: the folder's model for kind: local, else none).
    languages: tuple[str, ...] = ()  # the ones the folder takes (empty: any)
    detect: bool = False
    language_model: Annotated[str, Field(min_length=1, max_length=500)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _language_spelled(cls, data: Any) -> Any:
        return language.spelled(data)

    @field_validator("languages")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return language.checked_codes(value)

    # fallback34: several endpoints (vocab/fallbacks.py). ``endpoint: [a, b]`` is kept as
    # endpoint a and these fallbacks; ``model: {a: m, b: n}`` as these pairs (model: a's).
    fallbacks: tuple[str, ...] = ()
    models: tuple[tuple[str, Annotated[str, Field(min_length=1)]], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _several_endpoints(cls, data: Any) -> Any:
        return several.taken_apart(data)

    @field_validator("language")
    @classmethod
    def _iso_639_1(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError("must be a two-letter ISO-639-1 code such as en or de")
        return value

    @field_validator("name_template")
    @classmethod
    def _template_names_one_file(cls, value: str) -> str:
        if "{ext}" not in value:
            raise ValueError("must contain {ext}, or every format would get the same name")
        if "/" in value or "\\" in value:
            raise ValueError("must be a file name, not a path (use output_dir)")
        try:  # parsed, never formatted: {stem:>999999999} would be a gigabyte
            fields = [part[1:] for part in string.Formatter().parse(value) if part[1] is not None]
        except ValueError as exc:
            raise ValueError(f"is not a template: {exc}") from None
        for name, spec, conversion in fields:
            if name not in PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {name!r}; use {{stem}}, {{name}}, {{ext}}, {{language}},"
                    " {model}, {task} or {source_ext}"
                )
            if spec or conversion:
                raise ValueError(f"{{{name}}} takes no format spec or conversion")
        return value

    @property
    def timed(self) -> bool:
        """Whether the answer must have segments: for some sidecar's times, or speakers."""
        return bool(self.speakers) or any(f.timed for f in self.formats)

    @property
    def paced(self) -> bool:
        """Whether the answer's times are asked for where the same request gives them: txt
        and md start a paragraph at a pause, so their text is the same whatever else the
        folder writes (paras19); only a sidecar's times (``timed``) are made here."""
        return self.timed or Format.TXT in self.formats or Format.MD in self.formats

    @property
    def response_format(self) -> str:
        """One upload serves every format: ask for timestamps only when a format needs them.
        The key's value, kept as it was before ``paced`` (no finished file redone)."""
        return TIMED_RESPONSE if self.timed else "json"

    def shaping(self) -> dict[str, Any]:
        """The settings that shape the transcript (what a finished job is keyed by)."""
        shaping = {
            "endpoint": self.endpoint,
            "model": self.model,
            "language": self.language,
            "prompt": self.prompt,
            "temperature": self.temperature,
            "task": self.task.value,
            "response_format": self.response_format,
        } | (  # only when set, so that the key of every other folder stays as it was
            {"speakers": _jsonable(self.speakers), "voices": str(self.voices)}
            if self.speakers or self.voices
            else {}
        )
        if self.vocabulary:
            shaping["vocabulary"] = list(self.vocabulary)
        if self.detect:  # issue 32: only when set, as above
            shaping["languages"] = list(self.languages) or language.AUTO
        if self.timed and (self.align is False or self.align_model):  # timing30: re-timed
            shaping["align"] = {"align": self.align is not False, "model": self.align_model}
        if not tracks.default(self.audio_track):  # tracks32
            shaping["audio_track"] = self.audio_track
        if self.fallbacks:  # fallback34: the list, whichever endpoint takes the file
            shaping["fallbacks"], shaping["models"] = list(self.fallbacks), dict(self.models)
        return shaping

    def shaping_hash(self) -> str:
        blob = json.dumps(self.shaping(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # budget34: what this folder's files may cost a day and a month (vocab/budget.py)
    budget: Budget | None = None
    # budget34: which endpoint of the list first (vocab/route.py), and by when
    route: Route = "in_order"
    deadline: Deadline | None = None


def _jsonable(value: bool | SpeakerCount) -> Any:
    return value.model_dump() if isinstance(value, SpeakerCount) else value
