"""Pure: what a model on an endpoint kind takes, and the request that fits it.

Three sources, each overriding the one before: the table below (PROTOCOL.md
section 6.1 for OpenAI's models, sections 4 and 6.2 for the other kinds), what
the user states in the endpoint's ``models:``, and what the server itself said
(a refusal naming a parameter, learned and kept in the ledger: ``limits.py``).

An ``Ask`` is one request's choices: the response format, whether timestamps,
a prompt and ``chunking_strategy`` go with it. Every choice is an ``Item`` the
server can confirm (by answering) or refuse (by naming it in a 400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dropscribe.vocab.endpoints import Endpoint, ModelModel
    from dropscribe.vocab.settings import FolderSettings


class Chunking(StrEnum):
    """Whether a request carries ``chunking_strategy=auto``."""

    NEVER = "never"  # the server does not know the field (or refused it)
    LONG = "long"  # required for audio over 30 s (gpt-4o-transcribe-diarize)


DIARIZE_CHUNKING_SECONDS = 30.0
# Observed: the gpt-4o models refuse audio over about 1400 s (1500 s on Azure); with margin.
GPT4O_SECONDS = 1300.0
# gpt-4o models stop after 2,000 output tokens: about 1,500 words, or 8 minutes of the
# densest speech (190 words a minute). Longer requests would come back cut short.
GPT4O_OUTPUT_SECONDS = 480.0


@dataclass(frozen=True)
class Caps:
    """What one model on one endpoint takes."""

    formats: tuple[str, ...]  # response_format values, the preferred first
    timed: str | None = None  # the format whose answer has segment times; None: no times
    granularities: bool = False  # timestamp_granularities[] with the timed format
    prompt: bool = True
    translate: bool = False
    chunking: Chunking = Chunking.NEVER
    max_seconds: float | None = None  # longest audio one request takes
    output_seconds: float | None = None  # longest audio one answer can hold in full
    # gpt-transcribe's form (PROTOCOL.md 7.2): the language as languages[], the
    # vocabulary as keywords[], and no temperature or response_format (json is all it
    # gives); every other model: language, the vocabulary in the prompt, temperature.
    listed: bool = False
    # Whether language goes in a request that asks for timestamps: one client's
    # reference says Voxtral 3 refuses the pair (PROTOCOL.md 7.3); learned when it does.
    language_with_times: bool = True

    @property
    def request_seconds(self) -> float | None:
        """The longest audio to send in one request, for both limits."""
        limits = [s for s in (self.max_seconds, self.output_seconds) if s is not None]
        return min(limits) if limits else None


WHISPER_1 = Caps(
    ("verbose_json", "json", "text", "srt", "vtt"),
    "verbose_json",
    granularities=True,
    translate=True,
)
GPT4O = Caps(("json", "text"), max_seconds=GPT4O_SECONDS, output_seconds=GPT4O_OUTPUT_SECONDS)
DIARIZE = Caps(
    ("diarized_json", "json", "text"),
    "diarized_json",
    prompt=False,
    chunking=Chunking.LONG,
    max_seconds=GPT4O_SECONDS,
)
# OpenAI's one file model from 2027-02-26 (PROTOCOL.md 7.2): json text only, no
# timestamps; its limits on length are not published, so the gpt-4o models' are kept.
GPT_TRANSCRIBE = Caps(
    ("json",),
    max_seconds=GPT4O_SECONDS,
    output_seconds=GPT4O_OUTPUT_SECONDS,
    listed=True,
)
SAFE = Caps(("json", "text"))  # an OpenAI-shaped model nobody knows
WHISPER_SERVER = Caps(  # servers that run Whisper themselves: segments in verbose_json
    ("verbose_json", "json", "text"),
    "verbose_json",
    granularities=True,
    translate=True,
)

# Mistral's Voxtral: no response_format field, one JSON answer with segments (asked for
# with timestamp_granularities=segment: Voxtral 3 refuses word, PROTOCOL.md 7.3); the
# prompt goes as context_bias words; about three hours per request (section 6.2).
VOXTRAL = Caps(("verbose_json",), "verbose_json", granularities=True, max_seconds=10_800.0)
# Voxtral 3 (and the -latest aliases now naming it): language never beside timestamps,
# so that the first request is right (PROTOCOL.md 7.3).
VOXTRAL_3 = replace(VOXTRAL, language_with_times=False)
VOXTRAL_3_NAMES = re.compile(r"transcribe-(3|latest)|voxtral-mini-latest")
# whisper-asr-webservice: output=json always has segments; task=translate is a query.
ASR = Caps(("verbose_json",), "verbose_json", translate=True)
# Together: OpenAI's shape around whisper-large-v3; translations not documented.
TOGETHER = replace(WHISPER_SERVER, translate=False)

OPENAI_MODELS: tuple[tuple[re.Pattern[str], Caps], ...] = (
    (re.compile(r"whisper"), WHISPER_1),
    (re.compile(r"gpt-4o(-mini)?-transcribe-diarize"), DIARIZE),
    (re.compile(r"gpt-4o(-mini)?-transcribe"), GPT4O),
    (re.compile(r"gpt-transcribe"), GPT_TRANSCRIBE),
)
OPENAI_SHAPED = {"openai", "azure", "gateway"}  # the model name says what it is


def table(kind: str, model: str) -> Caps:
    """The built-in capabilities of ``model`` on an endpoint of ``kind``."""
    if kind in OPENAI_SHAPED:
        name = model.lower()
        for pattern, caps in OPENAI_MODELS:
            if pattern.search(name):
                return caps
        return SAFE
    match kind:
        case "groq":  # json, text, verbose_json; translation on whisper-large-v3 only
            return replace(WHISPER_SERVER, translate=model == "whisper-large-v3")
        case "vllm":  # srt/vtt refused; verbose_json only for models with timestamps
            return WHISPER_SERVER
        case "whispercpp":  # no timestamp_granularities field; segments always
            return replace(WHISPER_SERVER, granularities=False)
        case "mistral":
            return VOXTRAL_3 if VOXTRAL_3_NAMES.search(model.lower()) else VOXTRAL
        case "asr":
            return ASR
        case "together":
            return TOGETHER
        case _:  # speaches, localai, local
            return WHISPER_SERVER


TIMED_FORMATS = ("verbose_json", "diarized_json")


def with_stated(caps: Caps, said: ModelModel) -> Caps:
    """``caps`` with what the user stated in the config put over it."""
    formats = said.formats if said.formats is not None else caps.formats
    timed = next((f for f in formats if f in TIMED_FORMATS), None)
    if said.timestamps is False:
        timed = None
    elif said.timestamps is None and said.formats is None:
        timed = caps.timed
    chunking = caps.chunking
    if said.chunking_strategy is not None:
        chunking = Chunking.LONG if said.chunking_strategy else Chunking.NEVER
    return replace(
        caps,
        formats=formats,
        timed=timed,
        granularities=caps.granularities and timed == "verbose_json",
        prompt=caps.prompt if said.prompt is None else said.prompt,
        translate=caps.translate if said.translate is None else said.translate,
        chunking=chunking,
        max_seconds=said.max_seconds if said.max_seconds is not None else caps.max_seconds,
    )


def of(endpoint: Endpoint, model: str) -> Caps:
    """The model's capabilities on this endpoint from the table and the config (not yet
    what its server taught us: ``limits.py``)."""
    caps = table(endpoint.kind, model)
    said = endpoint.models.get(model)
    if said is not None:
        caps = with_stated(caps, said)
    if endpoint.max_duration_seconds is not None:
        caps = replace(caps, max_seconds=endpoint.max_duration_seconds)
    return caps


def cannot_translate(endpoint: Endpoint, model: str) -> str:
    return (
        f"model {model!r} on endpoint {endpoint.name!r} ({endpoint.kind}) cannot"
        " translate; use whisper-1 (or say translate: true for it under"
        f" endpoints.{endpoint.name}.models)"
    )


class Item(NamedTuple):
    """One choice of a request, as the ledger keeps it: ``(param, value)``."""

    param: str
    value: str


PROMPT = Item("prompt", "any")
GRANULARITIES = Item("timestamp_granularities", "segment")
CHUNKING = Item("chunking_strategy", "auto")
CHUNKING_REQUIRED = Item("chunking_strategy", "required")
LANGUAGE_WITH_TIMES = Item("language", "with timestamp_granularities")


def learned(caps: Caps, refused: Iterable[Item]) -> Caps:
    """``caps`` less what the server refused (and plus what it said is required)."""
    gone = set(refused)
    if not gone:
        return caps
    formats = tuple(f for f in caps.formats if Item("response_format", f) not in gone)
    timed = caps.timed if caps.timed in formats else None
    chunking = caps.chunking
    if CHUNKING_REQUIRED in gone:
        chunking = Chunking.LONG
    if CHUNKING in gone:
        chunking = Chunking.NEVER
    durations = [float(i.value) for i in gone if i.param == "max_seconds"]
    longest = caps.max_seconds
    if durations:
        longest = min([*durations, *([longest] if longest is not None else [])])
    return replace(
        caps,
        formats=formats,
        timed=timed,
        granularities=caps.granularities and timed is not None and GRANULARITIES not in gone,
        prompt=caps.prompt and PROMPT not in gone,
        chunking=chunking,
        max_seconds=longest,
        language_with_times=caps.language_with_times and LANGUAGE_WITH_TIMES not in gone,
    )


@dataclass(frozen=True)
class Ask:
    """The choices of one request."""

    response_format: str
    granularities: bool = False
    prompt: bool = True
    chunking: bool = False
    listed: bool = False  # gpt-transcribe's form (``Caps.listed``)
    language: bool = True  # the folder's language, where it has one
    seconds: float | None = field(default=None, compare=False)  # the audio's, when known

    @property
    def timed(self) -> bool:
        return self.response_format in TIMED_FORMATS

    def items(self) -> tuple[Item, ...]:
        """What the server may refuse in this request."""
        out = [Item("response_format", self.response_format)]
        if self.granularities:
            out.append(GRANULARITIES)
        if self.prompt:
            out.append(PROMPT)
        if self.chunking:
            out.append(CHUNKING)
        return tuple(out)

    @property
    def pairs_language_with_times(self) -> bool:
        """Whether the request carries both the language and timestamp_granularities."""
        return self.language and self.granularities


class NothingToAsk(Exception):  # noqa: N818 - a finding, raised to the uploader
    """The model refused every response format it might take."""


def asked(caps: Caps, settings: FolderSettings) -> Ask:
    """The request for a whole file of unknown length with a folder's ``settings``."""
    return ask(
        caps,
        timed=settings.timed,
        prompt=True,
        seconds=None,
        language=bool(settings.language),
        paced=settings.paced,
    )


def ask(
    caps: Caps,
    *,
    timed: bool,
    prompt: bool,
    seconds: float | None,
    language: bool = False,
    paced: bool = False,
) -> Ask:
    """The request for audio of ``seconds`` (None: unknown), with timestamps if ``timed``
    (or ``paced``: segment times for txt's paragraphs, never a diarized answer) and the
    model gives them, with the folder's prompt if it has one the model takes, and its
    ``language`` if it has one (where the model refuses it beside timestamps, the one the
    folder needs less is left out)."""
    if not caps.formats:
        raise NothingToAsk
    if (timed or (paced and caps.timed == "verbose_json")) and caps.timed is not None:
        fmt = caps.timed
    else:
        fmt = next((f for f in caps.formats if f in {"json", "text"}), caps.formats[0])
    long = seconds is None or seconds > DIARIZE_CHUNKING_SECONDS
    granularities = caps.granularities and fmt == "verbose_json"
    if language and granularities and not caps.language_with_times:
        if timed:
            language = False  # the server detects it
        else:
            granularities = False
    return Ask(
        response_format=fmt,
        granularities=granularities,
        language=language,
        prompt=prompt and caps.prompt,
        chunking=caps.chunking is Chunking.LONG and long,
        listed=caps.listed,
        seconds=seconds,
    )


def fits(caps: Caps, seconds: float | None) -> bool:
    """Whether audio of this length can go in one request."""
    longest = caps.request_seconds
    return seconds is None or longest is None or seconds <= longest
