"""How a file is sent, decided from facts alone: whole, in re-encoded chunks, or in short
spans; and, once an answer is in, what becomes of its times.

Pure: values in, values out, nothing of the package imported. ``jobs/plan.py`` gathers
the facts (the probe, the endpoint's kind and limits, the model as now known, the
settings, whether local timing is usable), carries the plan out, and gathers them again
when a server's refusal changes them (``Replan``, or HTTP 413 to a whole upload).

=================================================  ====================================
the facts                                          the plan
=================================================  ====================================
times wanted, remote model gives none, local       spans ("model M gives no timestamps
timing unusable                                    and its words cannot be timed ...")
kind is local                                      whole (it decodes anything)
a picture track / cut short / a type the kind      chunks, the reason saying which
does not take / over the upload limit / longer
than one request
the whole file was refused as too large (413)      chunks ("... set max_upload_bytes")
otherwise                                          whole
=================================================  ====================================

A whole or chunked plan asks the server for no times (``untimed``) where they are had
here instead: the model gives none, or (Voxtral 3) it refuses the language with times.
"""

from __future__ import annotations

import dataclasses
import enum

MIB = 2**20


class How(enum.Enum):
    """How the file goes to the endpoint."""

    WHOLE = "whole"  # one upload of the file as it is
    CHUNKS = "chunks"  # decoded, re-encoded, cut at pauses
    SPANS = "spans"  # short chunks, each one's text placed at its sound


class Then(enum.Enum):
    """What becomes of an answer's times (``after``)."""

    KEEP = "keep"  # the answer as it came
    SNAP = "snap"  # the engine's word times snapped to the speech
    ALIGN = "align"  # the answer's own words timed on this machine
    SPANS = "spans"  # sent again as short spans


@dataclasses.dataclass(frozen=True)
class Facts:
    """What is known about one file and where it goes, when the plan is made."""

    kind: str  # the endpoint's kind: openai, mistral, local, ...
    model: str
    size: int  # bytes
    extension: str  # lower case, without the dot
    accepted: bool  # whether the kind takes files of this type as they are
    upload_limit: int | None  # bytes one upload may carry; None: no limit
    duration: float | None  # seconds, as probed
    video: bool  # a picture track
    request_seconds: float | None  # longest audio one request to the model may carry
    timed: bool = False  # a sidecar needs times
    paced: bool = False  # txt's paragraphs use the times the engine gives (paras19)
    language: bool = False  # the settings name the language
    speakers: bool = False
    gives_times: str | None = None  # the model's timed format; None: it gives no times
    granularities: bool = False  # word times when asked for them
    language_with_times: bool = True  # takes the language in a request for times
    timing_unusable: str | None = None  # why words cannot be timed here; None: they can
    whole_refused: bool = False  # a whole upload was refused as too large (HTTP 413)
    cut: bool = False  # it holds clearly less than it declares; ``duration``: what it holds

    @property
    def remote(self) -> bool:
        return self.kind != "local"

    @property
    def worded(self) -> bool:
        """Whether the model answers with word times when asked (Mistral's Voxtral gives
        segment times only; a diarizing model, speakers' segments)."""
        return self.gives_times == "verbose_json" and self.granularities and self.kind != "mistral"


@dataclasses.dataclass(frozen=True)
class Plan:
    """How the file goes, and why (the reason of ``audio.spans`` / ``audio.reencoding``)."""

    how: How
    reason: str | None = None  # None for a whole upload
    untimed: bool = False  # ask for no times: they are had here


@dataclasses.dataclass(frozen=True)
class Finish:
    """What becomes of an answer's times, and why (for spans)."""

    then: Then
    reason: str | None = None


def decide(facts: Facts) -> Plan:
    """The plan for a file with ``facts``."""
    wanted = facts.remote and facts.timed
    if wanted and facts.gives_times is None and facts.timing_unusable is not None:
        return Plan(How.SPANS, spans_reason(facts.model, facts.timing_unusable), untimed=True)
    untimed = wanted and facts.timing_unusable is None and _timed_here(facts)
    why = reencoding(facts)
    if why is None and facts.whole_refused:
        # A gateway or server with a lower limit than max_upload_bytes says: never the
        # same bytes again, but compressed chunks may well fit.
        why = (
            "the endpoint refused the whole file as too large (HTTP 413);"
            " set max_upload_bytes to its limit"
        )
    return Plan(How.WHOLE if why is None else How.CHUNKS, why, untimed=untimed)


def asks_timing(facts: Facts) -> bool:
    """Whether ``decide`` needs to know if words can be timed here (``timing_unusable``):
    finding out may read a timing model's files."""
    return facts.remote and facts.timed and _timed_here(facts)


def _timed_here(facts: Facts) -> bool:
    """Whether the server is asked for no times, its words timed here instead (where
    they can be): the model gives none, or it takes the language only without them
    (Voxtral 3, PROTOCOL.md 7.3) and the settings name one."""
    return facts.gives_times is None or (
        facts.language and not facts.language_with_times and not facts.speakers
    )


def reencoding(facts: Facts) -> str | None:
    """Why the file cannot be uploaded as it is; None when it can."""
    if not facts.remote:
        return None  # faster-whisper decodes any container and any length itself
    if facts.video:
        return "it has a picture track; only the audio is sent"
    if facts.cut:  # cutapi19: a strict server refuses its broken end (HTTP 400)
        return "it is cut short; only the audio it holds is sent"
    if not facts.accepted:
        return f"endpoint kind {facts.kind} does not take .{facts.extension} files"
    limit = facts.upload_limit
    if limit is not None and facts.size > limit:
        return f"{facts.size / MIB:.1f} MiB is over the {limit / MIB:.1f} MiB upload limit"
    seconds, duration = facts.request_seconds, facts.duration
    if seconds is not None and duration is not None and duration > seconds:
        return (
            f"{duration:.0f} s is over the {seconds:.0f} s one request to {facts.model} may carry"
        )
    return None


def asks_timing_after(facts: Facts, *, text: bool, words: bool) -> bool:
    """Whether ``after`` needs to know if the answer's words can be timed here."""
    return facts.timed and text and not words and facts.remote and not facts.worded


def after(
    facts: Facts, plan: Plan, *, text: bool, words: bool, unusable: str | None = None
) -> Finish:
    """What becomes of the answer to a whole or chunked ``plan``: ``text``, whether it
    has any; ``words``, word times; ``unusable``, why its words cannot be timed here now
    that its language is known (None: they can). The engine's word times are snapped for
    txt's paragraphs too (``paced``), so txt is the same beside srt; times are made here
    only for a sidecar that needs them."""
    if not (facts.timed or facts.paced) or not text:
        return Finish(Then.KEEP)
    if words:
        return Finish(Then.SNAP)
    if not facts.timed or not facts.remote or facts.worded:
        return Finish(Then.KEEP)  # segment times from an engine that gives words when asked
    if unusable is not None:
        if plan.untimed:  # the language became known with the answer
            return Finish(Then.SPANS, spans_reason(facts.model, unusable))
        return Finish(Then.KEEP)  # the engine's segment times, as it gave them
    return Finish(Then.ALIGN)


def spans_reason(model: str, why_not: str) -> str:
    """The reason ``audio.spans`` gives."""
    return (
        f"model {model} gives no timestamps and its words cannot be timed on this"
        f" machine ({why_not}); short spans place the text in time"
    )
