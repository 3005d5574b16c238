"""One label per voice across the chunks of a long recording (OpenAI's diarize model).

Labels restart in every request: chunk 1 may call a person ``A`` whom chunk 3 calls
``B``. So, as Speakr does, the first chunk is transcribed alone; for each speaker it
found, the longest stretch they spoke (2 to 10 s) is cut from the decoded audio, and
those clips go with every later chunk as known speakers named ``Speaker A``, ``Speaker
B`` …, next to the folder's own ``voices:`` (four in all, at most). A later chunk then
calls those people by those names, which are turned back into ``A``, ``B``; a voice
the first chunk did not hear gets the next free letter.

Kinds without known speakers (Mistral, Together, whisper-asr-webservice) take three
hours or more in one request, so their recordings are rarely cut. Where they are, each
chunk starts ``OVERLAP`` seconds before the cut, and each of its labels is matched to
the earlier chunk's label it shares the most speaking time with in that stretch.
"""

from __future__ import annotations

import itertools
import os
import shutil
import wave
from typing import TYPE_CHECKING

from dropscribe import speakers
from dropscribe.audio import voices
from dropscribe.audio.transcode import RATE, SAMPLE_BYTES, private
from dropscribe.transcribe import kinds

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from dropscribe.audio.split import Span
    from dropscribe.transcript import Segment, Transcript
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

PREFIX = "Speaker "  # what the first chunk's voices are called in later requests
OVERLAP = 20.0  # seconds each chunk repeats of the one before, to match its voices
MOST_SHARED = 500  # segments of each chunk compared in an overlap (speech has 10 or so)


def overlapped(endpoint: Endpoint, settings: FolderSettings) -> bool:
    """Whether chunks overlap so that their labels can be matched in the overlap."""
    return bool(settings.speakers) and endpoint.kind not in kinds.KNOWN_VOICES


def matched(parts: list[tuple[Span, Transcript]]) -> list[Transcript]:
    """The chunks' transcripts with each later chunk's labels put on the earlier ones'
    by the speaking time they share where the chunks overlap (one to one, the most
    shared first); a voice not heard there gets the next free letter."""
    out = [parts[0][1]]
    taken = set(speakers.labels(parts[0][1]))
    for (before_span, _), (span, part) in itertools.pairwise(parts):
        before = out[-1]
        low, high = span.start, before_span.end
        shared: dict[tuple[str, str], float] = {}
        for mine in _within(part.segments, span.start, low, high):
            for theirs in _within(before.segments, before_span.start, low, high):
                a = max(low, mine["start"] + span.start, theirs["start"] + before_span.start)
                b = min(high, mine["end"] + span.start, theirs["end"] + before_span.start)
                if b > a:
                    pair = (mine["speaker"], theirs["speaker"])
                    shared[pair] = shared.get(pair, 0.0) + b - a
        mapping: dict[str, str] = {}
        for (mine_label, their_label), _ in sorted(shared.items(), key=lambda kv: -kv[1]):
            if mine_label not in mapping and their_label not in mapping.values():
                mapping[mine_label] = their_label
        letters = speakers.Letters(taken | set(mapping.values()))
        for label in speakers.labels(part):
            if label not in mapping:
                mapping[label] = letters.next()
            taken.add(mapping[label])
        out.append(speakers.relabelled(part, mapping))
    return out


def _within(segments: Sequence[Segment], offset: float, low: float, high: float) -> list[Segment]:
    """The first ``MOST_SHARED`` segments with a speaker that reach into [low, high] on the
    source timeline: what two chunks share is compared pair by pair, so only there, and
    only so many (a hostile answer's 28,000 segments made 784 million pairs)."""
    inside = (
        s
        for s in segments
        if "speaker" in s and s["end"] + offset > low and s["start"] + offset < high
    )
    return list(itertools.islice(inside, MOST_SHARED))


def wanted(endpoint: Endpoint, settings: FolderSettings, chunks: int) -> bool:
    """Whether the first chunk must go first, to lend its voices to the others."""
    return bool(settings.speakers) and endpoint.kind in kinds.KNOWN_VOICES and chunks > 1


def lend(
    first: Transcript, span: Span, pcm: Path, settings: FolderSettings, folder: Path
) -> FolderSettings:
    """``settings`` for the later chunks: ``voices`` is ``folder``, holding the folder's
    own clips and one clip per speaker of the first chunk (as many as fit)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)  # clips of the recording's voices: ours alone
    own = voices.clips(settings.voices) if settings.voices is not None else ()
    for voice in own:
        (folder / voice.path.name).write_bytes(voice.read())  # as checked: no link
    room = voices.MOST_VOICES - len(own)
    named = {v.name for v in own}
    for label in speakers.labels(first):
        if room <= 0:
            break
        if label in named:
            continue
        stretch = _longest(first, label)
        if stretch is None:
            continue
        start, end = stretch
        _cut(pcm, span.start + start, span.start + end, folder / f"{PREFIX}{label}.wav")
        room -= 1
    return settings.model_copy(update={"voices": folder})


def relabel(part: Transcript, taken: set[str]) -> Transcript:
    """A later chunk's labels on the first chunk's scale: ``Speaker A`` is ``A`` again;
    a voice it heard first is the next letter not yet ``taken`` (which grows)."""
    mapping: dict[str, str] = {}
    for label in speakers.labels(part):
        if label.startswith(PREFIX):
            mapping[label] = label.removeprefix(PREFIX)
        elif speakers.GENERIC.fullmatch(label):
            mapping[label] = speakers.free_letter(taken)
        taken.add(mapping.get(label, label))
    return speakers.relabelled(part, mapping)


def _longest(transcript: Transcript, label: str) -> tuple[float, float] | None:
    """The longest segment of ``label``, as 2 to 10 s; None when all are shorter than 2 s."""
    best = max(
        (s for s in transcript.segments if s.get("speaker") == label),
        key=lambda s: s["end"] - s["start"],
        default=None,
    )
    if best is None or best["end"] - best["start"] < voices.SHORTEST:
        return None
    return best["start"], min(best["end"], best["start"] + voices.LONGEST)


def _cut(pcm: Path, start: float, end: float, target: Path) -> None:
    """Samples [start, end) of the decoded mono 16-bit 16 kHz audio as a WAV file."""
    with pcm.open("rb") as fh:
        fh.seek(round(start * RATE) * SAMPLE_BYTES)
        data = fh.read(round((end - start) * RATE) * SAMPLE_BYTES)
    with os.fdopen(private(target), "wb") as clip, wave.open(clip, "wb") as out:  # 0600
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_BYTES)
        out.setframerate(RATE)
        out.writeframes(data)
