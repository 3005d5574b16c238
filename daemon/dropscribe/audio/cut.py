"""A recording that holds clearly less audio than its container declares: cut short.

A copy or a sync that broke off, a recorder that lost power: the header written at the
start (FLAC's STREAMINFO total, Matroska's Duration, an MP3's Xing frame count, a WAV's
data size) still says how long the recording was, and decoding ends where the bytes do.
What the file holds is read from its packets, demuxed to the end, never decoded (within
a frame of what a decoder gets; 40-80 ms for 10 minutes of FLAC, Opus or MP3), and only
where its last seconds are not there: a whole file costs one seek and a few packets
(at most 2 ms for 10 minutes). PCM's bytes say it exactly: nothing is read.

An Ogg file declares no length: FFmpeg reads it from the last page there is (its granule
position counts what is there, never what was to come), so a cut Ogg seems a shorter
recording. A writer ends a file on a page's last byte, and marks that page as its
stream's last (``eos``, RFC 3533; libogg, FFmpeg, opusenc do): a file that ends inside a
page, or on a page without the mark (cutapi19: cut at a page's end), was cut (its
declared length is then unknown: None).

attack18: FFmpeg reads the file through ``Bounded``: never past the size the check
began with, and never more than ``SCAN_BYTES`` without handing over a packet. A FLAC
whose frames stop before 512 MiB of zeros (a recorder that preallocated its file and
lost power; ``truncate -s 2G``) made FFmpeg's parser buffer them all and abort the
process (``Assertion index > -0x20000000 failed at libavcodec/parser.c``, the daemon
gone); 500 MiB of them took 1 GB of memory, and 2 GB after a Matroska header 22 s of CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import av

from dropscribe.audio import probe, riff

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
EOS = 0x04  # an Ogg page's header type: the last page of its logical stream
# attack18: what FFmpeg may read without handing over a packet: 8 times the longest FLAC
# frame (65,535 samples of 8 channels of 32 bits); what lies past it is not audio
SCAN_BYTES = 16 * 1024 * 1024
# attack19: what FFmpeg may read while it opens the file, before the first packet: a
# Matroska whose Tags ID is overwritten made it read the whole file for its headers,
# each of the check's two opens (2 GB of zeros after it: 6 GB read, 30 s of CPU). An
# MP4's index for 10 hours of AAC is 7 MB; a FLAC's picture at most 16 MiB.
HEADER_BYTES = 64 * 1024 * 1024


class Bounded(riff.Opened):
    """The file at ``path`` as FFmpeg reads it for the check: to the size it had when
    opened (a file still growing is not followed), ``HEADER_BYTES`` while FFmpeg opens
    it, then ``SCAN_BYTES`` at a time (``more()`` allows as many again: at each packet).
    Past any of these, it ends."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._size = os.fstat(self._raw.fileno()).st_size
        self._left = HEADER_BYTES

    def more(self) -> None:
        self._left = SCAN_BYTES

    def read(self, size: int = -1) -> bytes:
        room = min(self._size - self._raw.tell(), self._left)
        data = self._raw.read(max(0, min(size, room) if size >= 0 else room))
        self._left -= len(data)
        return data or b""


@dataclass(frozen=True)
class Short:
    declared: float | None  # seconds the container declares; None for an Ogg (none)
    held: float  # seconds of audio the file holds


def short(path: Path, found: Probe, track: int = 0) -> Short | None:
    """How ``path`` (``found``: its probe) is cut short, or None when it is not, or
    cannot be told (no length declared, packets without durations, a damaged file).
    ``track``: which audio stream's packets are held against the file's declared length
    (cutapi19: a file of several is cut in each, a packet apart)."""
    if found.container == "ogg":
        if found.duration is not None and ogg_cut(path):
            return Short(None, found.duration)
        return None
    declared = found.declared
    if declared is None:
        return None
    if found.codec.startswith("pcm_"):
        held = found.duration  # the probe bounds it by the bytes there are
    elif reaches(path, declared - slack(declared), track):
        return None
    else:
        held = counted(path, track)
    if held is None or declared - held <= slack(declared):
        return None
    return Short(declared, held)


def slack(declared: float) -> float:
    """How much shorter than ``declared`` a whole file may seem."""
    return max(LEAST_SECONDS, LEAST_SHARE * declared)


def reaches(path: Path, seconds: float, track: int = 0) -> bool:
    """Whether audio stream ``track`` has a packet ending at ``seconds`` or later: a seek
    to a little before, then a few packets. False where that cannot be told so."""
    try:
        with Bounded(path) as bounded, probe.reading(bounded, {}) as container:
            stream = container.streams.audio[track]
            base = stream.time_base
            if not base:
                return False
            start = float((stream.start_time or 0) * base)
            at = max(0.0, seconds - TAIL_SECONDS) + start
            bounded.more()
            container.seek(int(at / base), stream=stream, backward=True)
            for n, packet in enumerate(container.demux(stream)):
                bounded.more()
                if packet.pts is not None and packet.size:
                    end = float((packet.pts + (packet.duration or 0)) * base) - start
                    if end >= seconds:
                        return True
                if n >= TAIL_PACKETS:
                    break
    except (av.FFmpegError, OSError, IndexError, OverflowError):
        pass
    return False


def counted(path: Path, track: int = 0) -> float | None:
    """The seconds of audio stream ``track``'s packets, read to the end; None when a
    packet has no duration (it cannot be told) or the file cannot be read."""
    try:
        with Bounded(path) as bounded, probe.reading(bounded, {}) as container:
            stream = container.streams.audio[track]
            if not stream.time_base:
                return None
            ticks = 0
            bounded.more()
            for packet in container.demux(stream):
                bounded.more()
                if packet.size:
                    if not packet.duration:
                        return None
                    ticks += packet.duration
            return probe.seconds(round(float(ticks * stream.time_base), 3))
    except (av.FFmpegError, OSError, IndexError):
        return None


def ogg_cut(path: Path) -> bool:
    """Whether the Ogg file was cut: it ends inside its last page, or on a page not
    marked as its stream's last (``EOS``). Its last ``2 * OGG_PAGE`` bytes are read, and
    followed page by page (each header gives the page's length) from the first place that
    leads to the end that way: a pattern inside a packet that looks like a page's start
    leads nowhere, and one before the first page cannot reach the end.
    attack18: each page is followed once: one that led nowhere is not followed again from
    a later start (10,000 tiny pages and a stray byte after them took 5 s of CPU)."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - 2 * OGG_PAGE))
            tail = fh.read(2 * OGG_PAGE)  # not what a file still growing has by then
    except OSError:
        return False
    nowhere: set[int] = set()
    at = tail.find(b"OggS")
    while at >= 0:
        if at not in nowhere:
            found = _pages_end(tail, at, nowhere)
            if found is not None:
                end, last = found
                return end > len(tail) or not last & EOS
        at = tail.find(b"OggS", at + 1)
    return False


def _pages_end(tail: bytes, at: int, nowhere: set[int]) -> tuple[int, int] | None:
    """Where the pages starting at ``at`` end (past ``tail`` when the last is cut), and
    the last whole one's header type; None when one of them is not followed by another
    page or by the end, or reaches a page in ``nowhere`` (which leads nowhere); the pages
    passed are added to it then."""
    passed: list[int] = []
    kind = 0
    while (rest := len(tail) - at) > 0:
        if at in nowhere or tail[at : at + 4] != b"OggS"[:rest] or (rest > 4 and tail[at + 4]):
            nowhere.update(passed)
            return None  # not a page (version 0) where the one before ends
        if rest < 27 or rest < 27 + tail[at + 26]:
            return len(tail) + 1, kind  # its header or its segment table cut
        passed.append(at)
        count, kind = tail[at + 26], tail[at + 5]
        at += 27 + count + sum(tail[at + 27 : at + 27 + count])
    return at, kind
