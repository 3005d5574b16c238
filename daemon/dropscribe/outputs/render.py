"""Pure: a Transcript -> the bytes of each sidecar format."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dropscribe.config.settings import Format

if TYPE_CHECKING:
    from dropscribe.transcript import Transcript


def _clock(seconds: float, sep: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


def cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    """Timed cues with monotonic, non-overlapping times and one-line-safe text.

    Without segments (a server that gave none) the whole text is one cue.
    """
    raw: list[tuple[float, float, str]] = [
        (seg["start"], seg["end"], seg["text"]) for seg in transcript.segments
    ]
    if not raw and transcript.text:
        raw = [(0.0, max(transcript.duration or 0.0, 1.0), transcript.text)]
    out: list[tuple[float, float, str]] = []
    floor = 0.0
    for start, end, text in raw:
        clean = " ".join(text.replace("-->", "->").split())
        if not clean:
            continue
        begin = max(start, floor)
        finish = max(end, begin)
        out.append((begin, finish, clean))
        floor = finish
    return out


def srt(transcript: Transcript) -> str:
    blocks = [
        f"{index}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for index, (start, end, text) in enumerate(cues(transcript), 1)
    ]
    return "\n".join(blocks)


def vtt(transcript: Transcript) -> str:
    blocks = [
        f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n"
        for start, end, text in cues(transcript)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render(transcript: Transcript, fmt: Format, task: str) -> bytes:
    match fmt:
        case Format.TXT:
            text = transcript.text + "\n"
        case Format.JSON:
            text = _json({"text": transcript.text})
        case Format.VERBOSE_JSON:
            text = _json({"task": task, **transcript.to_json()})
        case Format.SRT:
            text = srt(transcript)
        case Format.VTT:
            text = vtt(transcript)
    return text.encode("utf-8")
