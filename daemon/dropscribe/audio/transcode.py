"""Decode any container's audio to mono 16 kHz, and encode pieces of it compactly.

Both run as streams with PyAV, a second of audio at a time, so memory stays
flat whatever the recording's length: decoding writes 16-bit samples to a
scratch file under ``state_dir`` (115 MB per hour) and keeps only a loudness
value per 10 ms; encoding reads back one chunk's samples and writes Opus in
Ogg (or MP3, or FLAC) for the upload. FFmpeg releases the GIL while it
encodes, so chunks encode in parallel.

Every file written here is a copy of a recording, which may be private: each is made
0600 before anything is written to it, whatever the umask (attack20: a daemon under
umask 000 left its decoded samples and chunks 0666, readable by anyone who could reach
the folder: a state_dir the daemon could not tighten, not its own).

attack20: what a recording decodes to is not bounded by its size (an hour of silence is
656 kB of FLAC and 115 MB of samples: 100 hours filled 11.5 GB where state_dir is, the
ledger's and often the whole system's disk). So a scratch file stops short of the file
system's last ``RESERVE_LEAST`` bytes or ``RESERVE_SHARE`` of it, whichever is more, with
an OSError saying so (the job's ``audio.scratch_failed``: tried again later).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import av
import numpy as np

from dropscribe.audio import probe, split
from dropscribe.errors import Abandoned, PermanentError

if TYPE_CHECKING:
    import threading
    from collections.abc import Iterator
    from pathlib import Path

    import numpy.typing as npt
    from av.audio.stream import AudioStream

RATE = 16000  # what Whisper resamples everything to anyway
# The WAV demuxer hands out 4 KB packets by default: ten thousand Python round trips
# per minute of CD audio. 1 MB packets decode a WAV about twice as fast.
DEMUX = {"max_size": str(1 << 20)}
SAMPLE_BYTES = 2
# A scratch file never takes its file system's last 64 MiB, kept for the ledger, nor the
# last quarter of a smaller one (a 32 MiB tmpfs still takes a short recording; a share of
# a big disk would refuse a long one on a 1 TB disk that is 95 % full).
RESERVE = 64 << 20
ROOM_CHECK = 16 << 20  # bytes written between looks at the room left (an eighth at most)


@dataclass(frozen=True)
class Codec:
    name: str
    container: str
    encoder: str
    extension: str
    bit_rate: int | None
    bytes_per_second: float  # a safe overestimate, for fitting chunks under a byte limit
    options: tuple[tuple[str, str], ...] = ()


CODECS = {
    # 24 kbit/s Opus is transparent for speech and about 50x smaller than CD-quality WAV.
    # compression_level 5 of 10 encodes 1.7x faster; speech at 24 kbit/s does not care.
    "opus": Codec("opus", "ogg", "libopus", "ogg", 24_000, 6_000, (("compression_level", "5"),)),
    "mp3": Codec("mp3", "mp3", "libmp3lame", "mp3", 32_000, 4_500),
    "flac": Codec("flac", "flac", "flac", "flac", None, RATE * SAMPLE_BYTES),
}


@dataclass(frozen=True)
class Decoded:
    """A recording's audio as mono 16 kHz samples in ``pcm``, and its loudness envelope."""

    pcm: Path
    samples: int
    envelope: npt.NDArray[np.float32]
    truncated: str | None = None  # why decoding stopped before the end, if it did

    @property
    def seconds(self) -> float:
        return self.samples / RATE


def decode(source: Path, pcm: Path) -> Decoded:
    """Decode the first audio stream of ``source`` into ``pcm``; other streams are skipped."""
    per = round(RATE * split.FRAME)
    pending = np.empty(0, dtype=np.int16)
    levels: list[npt.NDArray[np.float32]] = []
    samples = Samples(source)
    room = Room(pcm.parent)
    with os.fdopen(private(pcm), "wb") as out:
        for data in samples:
            room.take(data.nbytes)
            out.write(data.tobytes())
            block = np.concatenate((pending, data))
            whole = len(block) // per * per
            levels.append(split.loudness(block[:whole], RATE))
            pending = block[whole:]
    envelope = np.concatenate(levels) if levels else np.empty(0, dtype=np.float32)
    return Decoded(pcm, samples.count, envelope, samples.truncated)


class Samples:
    """An audio stream of ``source`` (``track``: its index among the audio streams, the
    first by default) as blocks of mono 16 kHz 16-bit samples, read as they are used;
    ``count`` and ``truncated`` (why decoding stopped early, if it did) are known once
    they have all been read. Only that stream is decoded: the others' packets are
    read past, never decoded."""

    def __init__(self, source: Path, track: int = 0) -> None:
        self.source = source
        self.track = track
        self.count = 0
        self.truncated: str | None = None

    def __iter__(self) -> Iterator[npt.NDArray[np.int16]]:
        try:
            container = probe.reading(self.source, dict(DEMUX))
        except av.FFmpegError as exc:
            raise PermanentError(f"not a readable audio file: {_reason(exc)}") from None
        with container:
            if len(container.streams.audio) <= self.track:
                raise PermanentError(
                    "no audio stream" if self.track == 0 else f"no audio track {self.track}"
                )
            stream = container.streams.audio[self.track]
            stream.codec_context.thread_type = "AUTO"
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames, None)
                except av.FFmpegError as exc:
                    if self.count == 0:
                        raise PermanentError(f"audio cannot be decoded: {_reason(exc)}") from None
                    self.truncated = _reason(exc)
                    frame = None
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                    self.count += len(data)
                    yield data
                if frame is None:
                    break
        if self.count == 0:
            raise PermanentError("the audio stream holds no samples")


def extract(source: Path, track: int, target: Path, codec: Codec = CODECS["flac"]) -> int:
    """One audio stream of ``source`` alone, as mono 16 kHz in ``target`` (lossless
    FLAC by default: what every engine hears anyway); return its bytes. A file that
    holds only the chosen track is what an upload of it sends, and what every later
    step (probe, chunks, timing, the local engine) reads."""
    os.close(private(target))
    with av.open(str(target), "w", format=codec.container) as out:
        stream = cast(
            "AudioStream",
            out.add_stream(codec.encoder, rate=RATE, layout="mono", options=dict(codec.options)),
        )
        if codec.bit_rate:
            stream.codec_context.bit_rate = codec.bit_rate
        position = 0
        room = Room(target.parent)
        for data in Samples(source, track):
            room.take(data.nbytes)  # at most the samples' own size
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = position
            out.mux(stream.encode(frame))
            position += len(data)
        out.mux(stream.encode(None))
    return target.stat().st_size


def joined(samples: Samples, abort: threading.Event | None = None) -> npt.NDArray[np.int16]:
    """All of ``samples`` as one array; ``Abandoned`` once ``abort`` is set."""
    blocks = []
    for block in samples:
        if abort is not None and abort.is_set():
            raise Abandoned
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)


def floats(samples: Samples) -> npt.NDArray[np.float32]:
    """All of ``samples`` as one array of floats in [-1, 1): what a library is handed
    instead of a path. faster-whisper's own decoder opens a path with an argument that
    PyAV 19 removed, so no file reaches it by name."""
    audio = joined(samples).astype(np.float32)
    audio /= 32768.0
    return audio


def encode(pcm: Path, start: float, end: float, target: Path, codec: Codec) -> int:
    """Encode the samples from ``start`` to ``end`` seconds of ``pcm``; return the bytes."""
    first, last = round(start * RATE), round(end * RATE)
    os.close(private(target))
    with pcm.open("rb") as fh, av.open(str(target), "w", format=codec.container) as out:
        stream = cast(
            "AudioStream",
            out.add_stream(codec.encoder, rate=RATE, layout="mono", options=dict(codec.options)),
        )
        if codec.bit_rate:
            stream.codec_context.bit_rate = codec.bit_rate
        fh.seek(first * SAMPLE_BYTES)
        position = first
        while position < last:
            data = fh.read(min(last - position, RATE) * SAMPLE_BYTES)
            if len(data) < SAMPLE_BYTES:
                break
            block = np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = position - first
            out.mux(stream.encode(frame))
            position += block.shape[1]
        out.mux(stream.encode(None))
    return target.stat().st_size


class Room:
    """The room left in ``folder``'s file system, looked at every ``ROOM_CHECK`` bytes a
    writer there takes: an OSError (ENOSPC) before one would leave less than the reserve."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._since = 0
        self._step = 0  # the first write looks

    def take(self, size: int) -> None:
        self._since += size
        if self._since < self._step:
            return
        self._since = size
        st = os.statvfs(self._folder)
        free, whole = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        kept = min(RESERVE, whole // 4)
        self._step = min(ROOM_CHECK, whole // 8)
        if free < kept + self._step:
            raise OSError(
                errno.ENOSPC,
                f"no room for more scratch audio: {free / 2**20:,.0f} MiB free where state_dir"
                f" is, and its last {kept / 2**20:,.0f} MiB are kept for the ledger (the"
                " recording decodes to more than that: free some room, or shorten it)",
            )


def private(path: Path) -> int:
    """A descriptor for writing ``path``, made (or emptied) and this user's alone, 0600
    whatever the umask; a link there is refused, not followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # one made before, wider
    except OSError:
        os.close(fd)
        raise
    return fd


def _reason(exc: av.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)
