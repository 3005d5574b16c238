"""Which languages a folder's recordings may be in, and what a detection decides (pure).

``language:`` is one ISO-639-1 code (forced: never detected), a list (``[en, de]``: one
of these, detected among them) or ``auto`` (detected among all). ``spelled`` turns the
YAML's value into the three settings that carry it (``language``, ``languages``,
``detect``); ``pick`` turns a detector's probabilities into the language the file is
in, or the one it is in though the folder does not take it (``Heard.unexpected``).
A rule may match the language (``match: {language: de}``): ``split`` reads such a match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

AUTO = "auto"
# A language outside the folder's list is believed when it is at least this likely and
# OUTWEIGHS times as likely as the list's best; less sure, the list's best is taken.
# (espeak-ng French, 6 s, Whisper base: fr 0.24, en 0.07 among [en, de].)
UNEXPECTED_AT = 0.2
OUTWEIGHS = 3.0

# Whisper's languages, code and name (openai/whisper tokenizer.py LANGUAGES): answers
# such as verbose_json's give the name ("german"), the folder gives the code.
_LINES = (
    "en english zh chinese de german es spanish ru russian ko korean fr french",
    "ja japanese pt portuguese tr turkish pl polish ca catalan nl dutch ar arabic",
    "sv swedish it italian id indonesian hi hindi fi finnish vi vietnamese he hebrew",
    "uk ukrainian el greek ms malay cs czech ro romanian da danish hu hungarian ta tamil",
    "no norwegian th thai ur urdu hr croatian bg bulgarian lt lithuanian la latin",
    "mi maori ml malayalam cy welsh sk slovak te telugu fa persian lv latvian bn bengali",
    "sr serbian az azerbaijani sl slovenian kn kannada et estonian mk macedonian",
    "br breton eu basque is icelandic hy armenian ne nepali mn mongolian bs bosnian",
    "kk kazakh sq albanian sw swahili gl galician mr marathi pa punjabi si sinhala",
    "km khmer sn shona yo yoruba so somali af afrikaans oc occitan ka georgian",
    "be belarusian tg tajik sd sindhi gu gujarati am amharic yi yiddish lo lao uz uzbek",
    "fo faroese ht haitian_creole ps pashto tk turkmen nn nynorsk mt maltese sa sanskrit",
    "lb luxembourgish my myanmar bo tibetan tl tagalog mg malagasy as assamese tt tatar",
    "haw hawaiian ln lingala ha hausa ba bashkir jw javanese su sundanese yue cantonese",
)
_WHISPER = [word for line in _LINES for word in line.split()]
NAMES = dict(zip(_WHISPER[1::2], _WHISPER[::2], strict=True))  # name -> code
CODE = re.compile(r"[a-z]{2}")


def code_of(said: str | None) -> str | None:
    """The ISO-639-1 code of an answer's language (a code, a tag such as de-AT, or a
    Whisper name such as german); None when it is not known."""
    if not said:
        return None
    lowered = said.strip().lower().replace("-", "_")
    head = lowered.split("_")[0]
    if CODE.fullmatch(head):
        return head
    return NAMES.get(lowered.replace(" ", "_"))


def spelled(data: Any) -> Any:
    """A level's settings with ``language:`` as the three settings that carry it: a code
    forces it (``languages`` empty, ``detect`` off), a list or ``auto`` is detected (no
    ``language`` until then). Anything else is left for the field's own check."""
    if not isinstance(data, dict) or "language" not in data:
        return data
    said = data["language"]
    if isinstance(said, str) and said.strip().lower() == AUTO:
        return {**data, "language": None, "languages": (), "detect": True}
    if isinstance(said, list | tuple):
        codes = tuple(dict.fromkeys(str(c).strip().lower() for c in said))
        return {**data, "language": None, "languages": codes, "detect": True}
    if isinstance(said, str):
        return {**data, "languages": (), "detect": False}
    return data


def checked_codes(codes: tuple[str, ...]) -> tuple[str, ...]:
    """``codes``, each a two-letter code (ValueError naming the first that is not)."""
    for said in codes:
        if not CODE.fullmatch(said):
            raise ValueError(f"{said!r} is not a two-letter ISO-639-1 code such as en or de")
    return codes


class Match(BaseModel):
    """A rule's ``match:`` by language: ``{language: de}`` or ``[de, fr]``, with a glob
    as ``path:`` if the rule needs both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Annotated[tuple[str, ...], Field(min_length=1)]
    path: str | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("language")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return checked_codes(value)


def split(match: str | Match | None) -> tuple[str | None, tuple[str, ...]]:
    """A rule's ``match:`` as (its glob, the languages it matches)."""
    if isinstance(match, Match):
        return match.path, match.language
    return match, ()


@dataclass(frozen=True)
class Heard:
    """What a detection decided: ``language`` (among those taken) with its probability,
    or ``unexpected``: the language heard, surely, though the folder does not take it."""

    language: str | None
    probability: float
    unexpected: bool = False


def pick(probabilities: list[tuple[str, float]], among: frozenset[str] | None) -> Heard:
    """The language of a recording from a detector's (code, probability) pairs, best
    first. ``among`` (None: any) restricts it: the best of those is taken, unless the best
    of all lies outside them and is sure enough (``Heard.unexpected``)."""
    if not probabilities:
        return Heard(None, 0.0)
    best, best_p = max(probabilities, key=lambda pair: pair[1])
    if among is None or best in among:
        return Heard(best, best_p)
    listed = [(c, p) for c, p in probabilities if c in among]
    code, p = max(listed, key=lambda pair: pair[1], default=(None, 0.0))
    if code is None or (best_p >= UNEXPECTED_AT and best_p >= OUTWEIGHS * p):
        return Heard(best, best_p, unexpected=True)
    return Heard(code, p)
