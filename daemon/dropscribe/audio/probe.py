"""Probe audio with PyAV (bundled FFmpeg libraries): is there anything to transcribe?

A file that holds no decodable audio is a permanent failure found before any
upload, with a reason a person can act on.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import av

from dropscribe.audio import riff
from dropscribe.errors import PermanentError

if TYPE_CHECKING:
    import io
    from pathlib import Path

    from av.container import InputContainer


@dataclass(frozen=True)
class Probe:
    container: str
    codec: str
    duration: float | None  # seconds, when the container says
    streams: int  # audio streams
    video: bool = False  # a picture track (cover art does not count)
    # short18: the seconds the header claims, before they are bounded by the bytes there
    # are (``duration`` is); None where it claims none: a streaming WAV's placeholder
    # size, FFmpeg's estimate from the bit rate (a raw MP3 without a Xing header), a file
    # with a picture track (its length may be the picture's)
    declared: float | None = None
    # cutapi19: it holds clearly less than that (``jobs/cutshort.py``), and ``duration`` is
    # what it holds: an endpoint gets it re-encoded, never as it is (``jobs/decide.py``)
    cut: bool = False


# hostile14b: the fewest bytes a second of audio can take (1 kbit/s: below the lowest
# speech codecs in use); a compressed file's header claiming more seconds than its size
# holds at that rate is believed only up to it. PCM's own byte rate bounds it exactly.
LOWEST_BYTES_A_SECOND = 125


# A quick look first (FFmpeg reads up to probesize bytes; the default 5 MB costs
# milliseconds per file); the thorough default only when the quick look finds no audio.
QUICK = {"probesize": "4096", "analyzeduration": "0"}
# short18: a WAV data size this large is a recorder's placeholder (0xFFFFFFFF, 0x7FFFFFFF)
# written before it knew the length, not a claim: 2 GiB is 18 h of 16 kHz mono.
PLACEHOLDER_BYTES = 0x7FFF0000
# An FFmpeg duration within this share of the file's size at the stream's bit rate is
# its estimate from that rate (the container said nothing), or a constant-rate file whole.
ESTIMATED = 0.01


def examine(path: Path) -> Probe:
    """Read the container's headers; raise PermanentError when there is no audio in it."""
    if path.stat().st_size == 0:
        raise PermanentError("empty file")
    riff.audio_end(path)  # attack19: a WAV's chunks counted before ``wave`` walks them
    found = _pcm_wav(path)
    if found is not None:
        return found
    try:
        return _probe(path, QUICK)
    except PermanentError:
        return _probe(path, {})


def _pcm_wav(path: Path) -> Probe | None:
    """A plain PCM WAV's header read by the standard library: 30 times cheaper than
    opening it with FFmpeg, which matters when a recorder drops thousands of them.
    None for anything else (or a WAV the ``wave`` module does not read)."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(12)  # by content: the name may be a descriptor's
            if magic[:4] != b"RIFF" or magic[8:12] != b"WAVE":
                return None
            fh.seek(0)
            with wave.open(fh, "rb") as header:
                frames, rate = header.getnframes(), header.getframerate()
                width = header.getsampwidth()
                # attack14: the frames there are, not those the header claims (a streaming
                # recorder leaves 0xFFFFFFFF; a dropper may say anything): wave stops
                # reading at the data chunk's start
                frame_bytes = max(1, width * header.getnchannels())
                claimed = frames if frames * frame_bytes < PLACEHOLDER_BYTES else None
                frames = min(
                    frames, max(0, os.fstat(fh.fileno()).st_size - fh.tell()) // frame_bytes
                )
    except (wave.Error, EOFError, OSError):
        return None
    if frames == 0 or rate == 0:
        return None  # let FFmpeg give the reason
    codec = {1: "pcm_u8", 2: "pcm_s16le", 3: "pcm_s24le", 4: "pcm_s32le"}.get(width, "pcm")
    declared = round(claimed / rate, 3) if claimed is not None else None
    return Probe("wav", codec, round(frames / rate, 3), streams=1, declared=declared)


# PyAV before 19 decodes tags strictly unless told to ignore bad bytes (a recorder's
# tag in Latin-1 would make the file unreadable); 19 dropped the argument along with
# the strictness.
_LENIENT: dict[str, Any] = (
    {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
)


def reading(path: Path | io.RawIOBase, options: dict[str, str]) -> InputContainer:
    """``av.open`` for reading, whatever the file's tags hold; ``path`` may be a file
    object FFmpeg reads through (``audio/cut.py``'s bounded one)."""
    if isinstance(path, PurePath):
        path = riff.source(path)  # attack19: a WAV read to a little past its audio
    source = path if not isinstance(path, PurePath) else str(path)
    opened: InputContainer = av.open(source, "r", options=options, **_LENIENT)
    return opened


@dataclass(frozen=True)
class Track:
    """One audio stream of a file, as its container describes it."""

    index: int  # among the file's audio streams: 0 is the first
    language: str | None  # the stream's language tag as written (``deu``, ``en``), if any
    codec: str  # "unknown" where no codec here reads it
    channels: int
    title: str | None = None
    # leftovers20: a codec here reads it. One that none does (a Matroska's unknown codec
    # id beside a good Opus track) is listed, so that the indices stay the file's, and
    # skipped with a warning (``jobs/tracks.py``) rather than failing the file.
    readable: bool = True

    def __str__(self) -> str:
        return f"{self.index} ({self.language or 'no language'})"


def tracks(path: Path) -> list[Track]:
    """The audio streams of ``path``, from the container's headers (nothing decoded),
    those no codec here reads too (``readable`` False); PermanentError when there are
    none or the file is not readable."""
    try:
        with reading(path, {}) as container:
            found = [_track(n, stream) for n, stream in enumerate(container.streams.audio)]
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PermanentError(f"not a readable audio file: {reason}") from None
    if not found:
        raise PermanentError("no audio stream")
    return found


def _track(index: int, stream: Any) -> Track:
    language, title = _tag(stream.metadata.get("language")), _tag(stream.metadata.get("title"))
    codec = stream.codec_context
    if codec is None:  # attack19: FFmpeg knows no codec for it (it names none either)
        return Track(index, language, "unknown", 0, title, readable=False)
    return Track(index, language, codec.name, codec.channels, title)


def _context(stream: Any) -> Any:
    """``stream``'s codec context; PermanentError when it has none. attack19: PyAV gives
    none to a stream of a codec FFmpeg does not know (a WAV's format tag 0x1234, a
    Matroska's unknown codec id), and reading its ``bit_rate`` crashed the job."""
    if stream.codec_context is None:
        raise PermanentError(
            "no codec here reads its audio (an unknown format tag or codec id): convert it"
            " with the program that made it, to WAV, FLAC or Opus"
        )
    return stream.codec_context


def _tag(value: object) -> str | None:
    """A metadata value as short printable text; None for none (or ``und``)."""
    if not isinstance(value, str):
        return None
    text = "".join(ch for ch in value if ch.isprintable())[:100].strip()
    return text if text and text.lower() != "und" else None


def _probe(path: Path, options: dict[str, str]) -> Probe:
    try:
        with reading(path, options) as container:
            audio = container.streams.audio
            if not audio:
                kinds = ", ".join(sorted({str(s.type) for s in container.streams})) or "none"
                raise PermanentError(f"no audio stream (streams: {kinds})")
            stream = audio[0]
            if stream.codec_context is None and (other := _readable(audio)) is not None:
                raise PermanentError(  # leftovers20: rather than convert the whole file
                    f"no codec here reads its first audio track (an unknown format tag or"
                    f" codec id); its track {other} can be read: audio_track: {other} (or"
                    f" all) takes it"
                )
            codec = _context(stream)
            duration = None
            if container.duration is not None:
                duration = container.duration / 1_000_000
            elif stream.duration is not None and stream.time_base:  # PyAV 19: 0/1 when unset
                duration = float(stream.duration * stream.time_base)
            duration = seconds(duration)
            video = any(
                not s.disposition & av.stream.Disposition.attached_pic
                for s in container.streams.video
            )
            # short18: beside a picture track, what the header says may be the picture's
            # length (Matroska's, even as the audio stream's duration): nothing declared
            declared = None if video else _declared(path, duration, codec)
            if duration is not None:  # hostile14b: no more than the file's bytes can hold
                duration = min(duration, _longest(path, codec))
            return Probe(
                container=container.format.name,
                codec=codec.name,
                duration=round(duration, 3) if duration is not None else None,
                streams=len(audio),
                video=video,
                declared=declared,
            )
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PermanentError(f"not a readable audio file: {reason}") from None


def _readable(audio: Any) -> int | None:
    """The first of ``audio`` streams a codec here reads (its index among them)."""
    return next((n for n, s in enumerate(audio) if s.codec_context is not None), None)


def counted(path: Path) -> float | None:
    """The first audio stream's length from its packets' durations (demuxed, nothing
    decoded): for a file whose container gives none (a browser's MediaRecorder webm,
    a live Matroska); None when that fails too."""
    try:
        with reading(path, {}) as container:
            stream = container.streams.audio[0]
            if not stream.time_base:
                return None
            ticks = sum(p.duration or 0 for p in container.demux(stream) if p.size)
            return seconds(round(float(ticks * stream.time_base), 3)) or None
    except (av.FFmpegError, IndexError):
        return None


def seconds(value: float | None) -> float | None:
    """``value`` as a length: None (unknown) for one below 0, NaN or infinite. long18: a
    Matroska whose Duration is -30000 ms was probed at -30 s, an MP3 whose Xing header
    counts 1 frame at -0.06 s (the frame less the encoder's delay): a negative price, a
    negative progress, a chunk plan over negative time. No length is better than that."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def _declared(path: Path, duration: float | None, codec: Any) -> float | None:
    """``duration`` as the header's claim; None where it is FFmpeg's estimate from the
    stream's bit rate (the file's size at that rate, within ``ESTIMATED``)."""
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return None
    rate = int(codec.bit_rate or 0)
    if rate and abs(path.stat().st_size * 8 / rate - duration) <= ESTIMATED * duration:
        return None
    return round(duration, 3)


def _longest(path: Path, codec: Any) -> float:
    """The most seconds ``path``'s size can hold: at PCM's own byte rate, else at
    ``LOWEST_BYTES_A_SECOND`` (a forged MP4 or MKV header may claim any duration)."""
    rate = LOWEST_BYTES_A_SECOND
    if str(codec.name).startswith("pcm_") and codec.bit_rate:
        rate = max(rate, int(codec.bit_rate) // 8)
    return path.stat().st_size / rate
