"""A transcript as dropscribe keeps it, from whichever engine it came, and what makes
one (the ``Transcriber`` protocol: an HTTP endpoint, or the local engine).

Answers are normalised here: times as finite seconds (strings too, as vLLM sends
them; NaN, infinite or absurd ones refused), text as it can be written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NotRequired, Protocol, TypedDict, cast

from dropscribe import markup, speakers
from dropscribe.errors import PermanentError

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.transcribe import models
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

NORMALISED = {"words", "speaker", "speaker_id"}  # a segment's fields read into others
MAX_TIME = 1e7  # seconds (115 days): a segment time past this is not a recording's
# What one answer may hold, so that the work it makes stays in proportion to the audio:
# speech is 2-5 words a second, and a segment per word (whisper.cpp's -ml 1) at most as
# many; a diarizing server names a handful of speakers (32 is the most one is asked for).
PER_SECOND = 20  # segments, and words, a second of audio
LEAST_ALLOWED = 2_000  # of each, however short the audio (or untimed the answer)
# attack20: and characters of text (the text, the segments' and the words' each), which
# the sidecars cut into words and cues at ~35 us and ~370 bytes a word: a 64 MiB answer
# of one minute's audio was 12 minutes of a worker and 8 GB. Speech is at most ~25 a
# second, a Whisper window looping on one phrase ~60 (448 tokens in 30 s).
TEXT_PER_SECOND = 200
LEAST_TEXT = 100_000
# A probe's length may be an estimate (an MP3 without a VBR header): the answer is held
# to twice it.
ESTIMATED = 2.0
# answers21: and the answer's bytes as they are read, before any is parsed (64 MiB of JSON
# for one second's audio was read and parsed whole, then refused): the densest honest
# answer (verbose_json, a segment a word at 6 words a second, word times, every character
# escaped: bench/answers.py) is ~2 KB a second, and one at the caps above in that shape
# 12-15 KB. Twice that, for a probe's estimate; however short the audio, a generous floor.
BYTES_PER_SECOND = 32 * 1024
LEAST_BYTES = 1 << 20
MOST_SPEAKERS = 100  # distinct speaker labels
NESTED = 32  # levels of lists and objects a segment's other fields keep (servers send one or two)
LABEL_CHARS = 100  # a speaker label is cut to this, on one line
# Whisper's own thresholds on a segment's numbers (its no_speech_threshold,
# logprob_threshold and compression_ratio_threshold, which faster-whisper shares): the
# sidecars' guard (outputs/guard.py) and the local engine's second look (transcribe/redo.py).
NO_SPEECH = 0.6
LOGPROB = -1.0
COMPRESSION = 2.4


class Segment(TypedDict):
    """One timed piece of a transcript. A server's other fields (``avg_logprob``,
    ``speaker`` ...) are kept as they came, in the verbose JSON sidecar."""

    id: int
    start: float
    end: float
    text: str
    avg_logprob: NotRequired[float]
    no_speech_prob: NotRequired[float]
    compression_ratio: NotRequired[float]
    speaker: NotRequired[str]
    timing: NotRequired[str]  # "estimated": placed by stitch.divide, not given by the server


class Word(TypedDict):
    word: str
    start: float
    end: float
    speaker: NotRequired[str]


@dataclass(frozen=True)
class CutShort:
    """short18: the recording held clearly less than its container declares (a copy or a
    sync that broke off, a recorder that lost power; ``audio/cut.py``): its transcript
    covers only the first ``decoded_seconds``. Kept with the transcript, in the ledger and
    the JSON sidecars, where a person looks later."""

    declared_seconds: float | None  # None: the container declares no length (Ogg)
    decoded_seconds: float

    def told(self) -> str:
        """What ``audio.short`` and ``explain`` say of it: what it is, what to do."""
        if self.declared_seconds is None:
            how = "it ends without the page that ends an Ogg stream (Ogg declares no length)"
        else:
            how = f"its header declares {self.declared_seconds:.1f} s"
        return (
            f"the recording looks cut short: {how}; the transcript covers only its first"
            f" {self.decoded_seconds:.1f} s. Copy the whole file again (a copy or sync that"
            " broke off); the new copy is transcribed afresh"
        )

    def to_json(self) -> dict[str, float | None]:
        return {"declared_seconds": self.declared_seconds, "decoded_seconds": self.decoded_seconds}

    @classmethod
    def from_json(cls, data: object) -> CutShort | None:
        """What ``to_json`` wrote; None for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("decoded_seconds"), float | int):
            return None
        declared = data.get("declared_seconds")
        declared = float(declared) if isinstance(declared, float | int) else None
        return cls(declared, float(data["decoded_seconds"]))


@dataclass(frozen=True)
class Transcript:
    """A transcript normalised from any server's answer: text plus timed segments."""

    text: str
    language: str | None = None
    duration: float | None = None
    segments: tuple[Segment, ...] = ()
    words: tuple[Word, ...] = ()
    request_id: str | None = field(default=None, compare=False)
    cut_short: CutShort | None = None  # short18: set by the job, never by an answer

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "language": self.language,
            "duration": self.duration,
            "segments": list(self.segments),
            "words": list(self.words),
        }
        if self.cut_short is not None:
            data["cut_short"] = self.cut_short.to_json()
        return data

    @property
    def speakers(self) -> bool:
        """Whether the engine said who speaks."""
        return any("speaker" in seg for seg in self.segments)

    @classmethod
    def from_json(cls, data: dict[str, Any], request_id: str | None = None) -> Transcript:
        """Normalise an answer: vLLM's string durations, LocalAI's ``text`` for words,
        WhisperX's words inside segments, Together's ``speaker_segments``, and every
        provider's speaker field as one ``speaker`` (``speakers.normalised``); what
        ``to_json`` kept of a recording cut short."""
        parsed = cls._parsed(data, request_id)
        if (cut := CutShort.from_json(data.get("cut_short"))) is not None:
            parsed = replace(parsed, cut_short=cut)
        return speakers.normalised(parsed)

    @classmethod
    def from_answer(cls, data: dict[str, Any], request_id: str | None = None) -> Transcript:
        """A server's answer, as ``from_json``, refused when it holds more than anything
        downstream should have to work through (``bounded``)."""
        return speakers.normalised(bounded(markup.turns(cls._parsed(data, request_id))))

    @classmethod
    def _parsed(cls, data: dict[str, Any], request_id: str | None) -> Transcript:
        text = data.get("text")
        if not isinstance(text, str):
            raise PermanentError("answer has no text field", request_id=request_id)
        found = data.get("speaker_segments") or data.get("segments") or ()
        segments: list[Segment] = []
        nested: list[Any] = []
        for index, seg in enumerate(found):
            if isinstance(seg, dict) and "start" in seg and "end" in seg:
                extras = {clean_text(k): _kept(v) for k, v in seg.items() if k not in NORMALISED}
                item = cast("Segment", extras)
                item["id"] = index
                item["start"] = _seconds(seg["start"], f"segments[{index}].start")
                item["end"] = _seconds(seg["end"], f"segments[{index}].end")
                item["text"] = clean_text(str(seg.get("text", "")))
                label = _label(seg)
                if label is not None:
                    item["speaker"] = label
                segments.append(item)
                words_in = seg.get("words")
                if isinstance(words_in, list):
                    nested += [
                        w if "speaker" in w or label is None else {**w, "speaker": label}
                        for w in words_in
                        if isinstance(w, dict)
                    ]
        words: list[Word] = []
        for index, word in enumerate(data.get("words") or nested):
            if isinstance(word, dict) and "start" in word and "end" in word:
                label = word.get("word", word.get("text", ""))
                item_word = Word(
                    word=clean_text(str(label)),
                    start=_seconds(word["start"], f"words[{index}].start"),
                    end=_seconds(word["end"], f"words[{index}].end"),
                )
                if (who := _label(word)) is not None:
                    item_word["speaker"] = who
                words.append(item_word)
        duration = data.get("duration")
        usage = data.get("usage")
        if duration in (None, "") and isinstance(usage, dict) and usage.get("type") == "duration":
            duration = usage.get("seconds")  # gpt-transcribe: the length billed (PROTOCOL 7.2)
        language = data.get("language")
        if language is None and isinstance(listed := data.get("languages"), list) and listed:
            first = listed[0]  # gpt-transcribe: [{"code": "en"}, ...]
            language = first.get("code") if isinstance(first, dict) else None
        return cls(
            text=clean_text(text.strip()),
            language=clean_text(language) if isinstance(language, str) else None,
            duration=_seconds(duration, "duration") if duration not in (None, "") else None,
            segments=tuple(segments),
            words=tuple(words),
            request_id=request_id,
        )


def answer_bytes(audio: float | None) -> int | None:
    """The most bytes an answer for ``audio`` seconds (its probe's, or a chunk's) is read
    to: ``BYTES_PER_SECOND`` of them, ``LEAST_BYTES`` at least; None when the length is
    not known (the endpoint's ``max_answer_bytes`` alone holds it then)."""
    if audio is None or not math.isfinite(audio):
        return None
    return max(LEAST_BYTES, math.ceil(BYTES_PER_SECOND * max(audio, 0.0)))


def bounded(transcript: Transcript, audio: float | None = None) -> Transcript:
    """``transcript`` as it came, if it is within the caps every answer is held to:
    ``MOST_SPEAKERS`` labels, ``PER_SECOND`` segments and as many words and
    ``TEXT_PER_SECOND`` characters of each text a second of the audio it covers, or
    ``LEAST_ALLOWED`` and ``LEAST_TEXT`` however short; else PermanentError saying which.
    The audio it covers is ``audio`` (its probed seconds) when known, else what the
    answer says: its duration or its last time, whichever is later (a hostile server
    can say 10^7 s; only a caller that knows the audio holds it to the audio)."""
    if audio is not None:
        seconds, held = audio, audio * ESTIMATED
    else:
        times = (item["end"] for item in (*transcript.segments[-1:], *transcript.words[-1:]))
        seconds = held = max(transcript.duration or 0.0, *times, 0.0)
    items, chars = (PER_SECOND, LEAST_ALLOWED), (TEXT_PER_SECOND, LEAST_TEXT)
    counts = (
        ("segments", len(transcript.segments), items),
        ("words", len(transcript.words), items),
        ("characters of text", len(transcript.text), chars),
        ("characters in segments", sum(len(s["text"]) for s in transcript.segments), chars),
        ("characters in words", sum(len(w["word"]) for w in transcript.words), chars),
    )
    for what, count, (rate, least) in counts:
        if count > (most := max(least, math.ceil(rate * held))):
            raise PermanentError(
                f"answer has {count:,} {what} for {seconds:g} s of audio; at most"
                f" {most:,} are taken ({rate} a second, {least:,} at least)",
                request_id=transcript.request_id,
            )
    named = len(speakers.labels(transcript))
    if named > MOST_SPEAKERS:
        raise PermanentError(
            f"answer names {named:,} speakers; at most {MOST_SPEAKERS} are taken",
            request_id=transcript.request_id,
        )
    return transcript


def _label(item: dict[str, Any]) -> str | None:
    """The speaker an item names (``speaker``, or Mistral's and Together's ``speaker_id``)."""
    for key in ("speaker", "speaker_id"):
        value = item.get(key)
        label = " ".join(str(value).split())[:LABEL_CHARS] if value is not None else ""
        if label:
            return clean_text(label)
    return None


def _seconds(value: Any, where: str) -> float:
    """A time in an answer; strings too (vLLM). Infinite, NaN or absurd is refused."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIME:
        raise PermanentError(f"answer has an impossible time: {where} = {str(value)[:40]}")
    return round(seconds, 3)


def _kept(value: Any, depth: int = 0) -> Any:
    """A segment's other field as the ledger and the JSON sidecar keep it: every NaN or
    infinite number in it None (JSON has none), its texts and keys ``clean_text``'s, and
    what nests past ``NESTED`` levels None. attack22: a lone surrogate in such a field
    (``"note": "\\ud800"``) failed the ledger's write of a finished transcript, and one
    nested 700 deep ended the job in a RecursionError, both crashes of ours."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list | dict) and depth >= NESTED:
        return None
    if isinstance(value, list):
        return [_kept(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _kept(v, depth + 1) for k, v in value.items()}
    return value


def clean_text(text: str) -> str:
    """Text as it can be written: a lone surrogate (JSON allows ``\\ud800``) becomes U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class Transcriber(Protocol):
    """What turns a file into a Transcript: an HTTP endpoint, or the local engine."""

    endpoint: Endpoint

    def transcribe(
        self,
        path: Path,
        settings: FolderSettings,
        ask: models.Ask | None = None,
        *,
        name: str | None = None,
    ) -> Transcript: ...

    def close(self) -> None: ...
