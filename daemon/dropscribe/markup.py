"""Pure: markup some models put into their text, read as what it means.

Fish Audio answers the aliases ``whisper-1``, ``gpt-4o-transcribe`` and
``whisper-large-v3`` with its own model, whose text carries speaker markers
(``<|speaker:0|>``) and sound-event cues (``[laughter]``) by default (PROTOCOL.md
7.1); Whisper itself writes ``[Music]`` over music. A marker becomes a speaker turn
(the label then reads like any other engine's, ``A``, ``B`` …); an event stays in the
transcript (txt, md, json) but is kept out of subtitles, where it would be read out
as if someone had said it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from dropscribe.transcript import Segment, Transcript, Word

SPEAKER = re.compile(r"<\|speaker:(\d{1,4})\|>")
# Sound events, in brackets or parentheses, as the engines that write them spell them.
EVENT = re.compile(
    r"[\[(](?:laugh(?:s|ter|ing)?|chuckles?|music(?: playing)?|applause|noise|silence"
    r"|inaudible|cough(?:s|ing)?|sighs?|crosstalk|breath(?:ing|es)?|background noise"
    r"|static|beep|blank_audio|no speech)[\])]",
    re.IGNORECASE,
)


def turns(transcript: Transcript) -> Transcript:
    """Speaker markers out of the text: a segment takes the speaker of its first marker
    (where the answer gave it none), a word loses its marker, and the whole text breaks
    into a paragraph at each marker after the first."""
    if "<|speaker:" not in transcript.text and not any(
        "<|speaker:" in s["text"] for s in transcript.segments
    ):
        return transcript
    segments: list[Segment] = []
    for seg in transcript.segments:
        found = SPEAKER.search(seg["text"])
        item = cast("Segment", {**seg, "text": _unmarked(seg["text"])})
        if found is not None and "speaker" not in seg:
            item["speaker"] = found.group(1)
        segments.append(item)
    words = [cast("Word", {**w, "word": SPEAKER.sub("", w["word"])}) for w in transcript.words]
    pieces = [p.strip() for p in SPEAKER.split(transcript.text)[::2]]
    return replace(
        transcript,
        text="\n\n".join(p for p in pieces if p),
        segments=tuple(segments),
        words=tuple(w for w in words if w["word"].strip()),
    )


def _unmarked(text: str) -> str:
    return " ".join(SPEAKER.sub(" ", text).split())


def quiet(transcript: Transcript) -> Transcript:
    """``transcript`` without sound-event cues, for subtitles."""
    if not (
        EVENT.search(transcript.text)
        or any(EVENT.search(s["text"]) for s in transcript.segments)
        or any(EVENT.search(w["word"]) for w in transcript.words)
    ):
        return transcript
    segments = [
        cast("Segment", {**s, "text": without_events(s["text"])}) for s in transcript.segments
    ]
    return replace(
        transcript,
        text=without_events(transcript.text),
        segments=tuple(s for s in segments if s["text"]),
        words=tuple(w for w in transcript.words if without_events(w["word"])),
    )


def without_events(text: str) -> str:
    return " ".join(EVENT.sub(" ", text).split())
