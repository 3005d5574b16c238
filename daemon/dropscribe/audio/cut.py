"""A recording that holds clearly less audio than its container declares: cut short.

A copy or a sync that broke off, a recorder that lost power: the header written at the
start (FLAC's STREAMINFO total, Matroska's Duration, an MP3's Xing frame count, a WAV's
data size) still says how long the recording was, and decoding ends where the bytes do.
What the file holds is read from its packets, demuxed to the end, never decoded (within
a frame of what a decoder gets; 40-80 ms for 10 minutes of FLAC, Opus or MP3), and only
where its last seconds are not there: a whole file costs one seek and a few packets
(at most 2 ms for 10 minutes). PCM's bytes say it exactly: nothing is read.

An Ogg file declares no length: FFmpeg reads it from the last page there is, so a cut
Ogg seems a shorter recording. A writer ends a file on a page's last byte; a file that
ends inside a page was cut (its declared length is then unknown: None).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import av

from dropscribe.audio import probe

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.audio.probe import Probe

# Short means more than a second and more than 2 % short: a whole file's packets come
# within 0.05 s of its header (PyAV's FLAC, Opus, MP3, AAC, WAV; espeak-ng's WAV exactly),
# and a frame is at most 0.12 s (FLAC's 4608 samples at 44.1 kHz; Opus, 60 ms).
LEAST_SECONDS, LEAST_SHARE = 1.0, 0.02
TAIL_SECONDS = 5.0  # how far before the declared end the quick look starts
TAIL_PACKETS = 2000  # packets the quick look reads at most (5 s of 2.5-ms Opus frames)
OGG_PAGE = 27 + 255 + 255 * 255  # the longest Ogg page, in bytes


@dataclass(frozen=True)
class Short:
    declared: float | None  # seconds the container declares; None for an Ogg (none)
    held: float  # seconds of audio the file holds


def short(path: Path, found: Probe) -> Short | None:
    """How ``path`` (``found``: its probe) is cut short, or None when it is not, or
    cannot be told (no length declared, packets without durations, a damaged file)."""
    if found.container == "ogg":
        if found.duration is not None and ends_inside_a_page(path):
            return Short(None, found.duration)
        return None
    declared = found.declared
    if declared is None:
        return None
    if found.codec.startswith("pcm_"):
        held = found.duration  # the probe bounds it by the bytes there are
    elif reaches(path, declared - slack(declared)):
        return None
    else:
        held = counted(path)
    if held is None or declared - held <= slack(declared):
        return None
    return Short(declared, held)


def slack(declared: float) -> float:
    """How much shorter than ``declared`` a whole file may seem."""
    return max(LEAST_SECONDS, LEAST_SHARE * declared)


def reaches(path: Path, seconds: float) -> bool:
    """Whether the first audio stream has a packet ending at ``seconds`` or later: a seek
    to a little before, then a few packets. False where that cannot be told so."""
    try:
        with probe.reading(path, {}) as container:
            stream = container.streams.audio[0]
            base = stream.time_base
            if not base:
                return False
            start = float((stream.start_time or 0) * base)
            at = max(0.0, seconds - TAIL_SECONDS) + start
            container.seek(int(at / base), stream=stream, backward=True)
            for n, packet in enumerate(container.demux(stream)):
                if packet.pts is not None and packet.size:
                    end = float((packet.pts + (packet.duration or 0)) * base) - start
                    if end >= seconds:
                        return True
                if n >= TAIL_PACKETS:
                    break
    except (av.FFmpegError, IndexError, OverflowError):
        pass
    return False


def counted(path: Path) -> float | None:
    """The seconds of the first audio stream's packets, read to the end; None when a
    packet has no duration (it cannot be told) or the file cannot be read."""
    try:
        with probe.reading(path, {}) as container:
            stream = container.streams.audio[0]
            if not stream.time_base:
                return None
            ticks = 0
            for packet in container.demux(stream):
                if packet.size:
                    if not packet.duration:
                        return None
                    ticks += packet.duration
            return round(float(ticks * stream.time_base), 3)
    except (av.FFmpegError, IndexError):
        return None


def ends_inside_a_page(path: Path) -> bool:
    """Whether the Ogg file ends inside its last page. Its last ``2 * OGG_PAGE`` bytes
    are read, and followed page by page (each header gives the page's length) from the
    first place that leads to the end that way: a pattern inside a packet that looks like
    a page's start leads nowhere, and one before the first page cannot reach the end."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 2 * OGG_PAGE))
        tail = fh.read()
    at = tail.find(b"OggS")
    while at >= 0:
        end = _pages_end(tail, at)
        if end is not None:
            return end > len(tail)
        at = tail.find(b"OggS", at + 1)
    return False


def _pages_end(tail: bytes, at: int) -> int | None:
    """Where the pages starting at ``at`` end (past ``tail`` when the last is cut); None
    when one of them is not followed by another page or by the end."""
    while (rest := len(tail) - at) > 0:
        if tail[at : at + 4] != b"OggS"[:rest] or (rest > 4 and tail[at + 4] != 0):
            return None  # not a page (version 0) where the one before ends
        if rest < 27 or rest < 27 + tail[at + 26]:
            return len(tail) + 1  # its header or its segment table cut
        count = tail[at + 26]
        at += 27 + count + sum(tail[at + 27 : at + 27 + count])
    return at
