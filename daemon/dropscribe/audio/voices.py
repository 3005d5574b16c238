"""Known voices: the short clips named after people in a ``voices:`` folder, read (and
their lengths probed) for the requests that take them."""

from __future__ import annotations

import base64
import errno
import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dropscribe import beneath
from dropscribe.errors import PermanentError
from dropscribe.vocab.settings import AUDIO_EXTENSIONS

SHORTEST, LONGEST = 2.0, 10.0  # seconds a known voice's clip may last (OpenAI's rule)
MOST_VOICES = 4  # clips one request takes (OpenAI's rule)
# Bytes a clip may have: 10 s of 48 kHz 32-bit stereo PCM is 3.84 MB, the most a clip
# of LONGEST seconds needs in any format we take; the rest is room for headers. Checked
# on the open descriptor before a byte is read, and no more is ever read.
CLIP_BYTES = 4 << 20
MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "flac": "audio/flac"}


@dataclass(frozen=True)
class Voice:
    """A known voice: a person's name and a clip of them speaking."""

    name: str
    path: Path
    seconds: float
    mime: str = field(default="audio/wav", repr=False)

    def read(self) -> bytes:
        """The clip's bytes (see ``_opened``), read again if it changed since the last time."""
        fd, st = _opened(self.path)
        try:
            stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            cached = _READ.get(self.path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                data = beneath.read_fd(fd, CLIP_BYTES, str(self.path))
            except OSError as exc:
                raise PermanentError(_refusal(self.path, exc)) from None
        finally:
            os.close(fd)
        with _READ_LOCK:
            _READ[self.path] = (stamp, data)
            while len(_READ) > _READ_KEPT:
                _READ.pop(next(iter(_READ)))
        return data

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.read()).decode("ascii")


# The clips last read, by path (the four a request takes, and room for a few folders).
_READ: dict[Path, tuple[tuple[int, int, int, int], bytes]] = {}
_READ_KEPT = 16
_READ_LOCK = threading.Lock()


def _opened(path: Path) -> tuple[int, os.stat_result]:
    """A clip opened from its folder's descriptor: a regular file, not a link (a link in
    a voices folder could send any file this user can read to the server), at most
    ``CLIP_BYTES``; PermanentError naming the clip otherwise."""
    try:
        folder = beneath.open_root(path.parent)
    except OSError as exc:
        why = f"voices folder {path.parent} cannot be opened: {exc.strerror}"
        raise PermanentError(why) from None
    try:
        return beneath.open_file(folder, path.name, CLIP_BYTES)
    except OSError as exc:
        raise PermanentError(_refusal(path, exc)) from None
    finally:
        os.close(folder)


def _refusal(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return (
            f"voice clip {path} is a symbolic link; links in a voices folder are never"
            " followed: put the clip itself there"
        )
    if exc.errno == errno.EFBIG:
        return (
            f"voice clip {path} is larger than {CLIP_BYTES} bytes; a known voice is"
            f" {SHORTEST:g} to {LONGEST:g} s of audio, which never needs more"
        )
    if exc.errno == errno.EINVAL:
        return f"voice clip {path} is not a regular file"
    return f"voice clip {path} cannot be read: {exc.strerror or exc}"


def clips(folder: Path) -> tuple[Voice, ...]:
    """The clips in ``folder``, by file name (the name is the stem), with their lengths.
    Raise PermanentError naming what a person must change."""
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        raise PermanentError(f"voices folder {folder} does not exist") from None
    return _clips(folder, stamp)


@functools.lru_cache(maxsize=32)
def _clips(folder: Path, stamp: int) -> tuple[Voice, ...]:  # noqa: ARG001 - the key
    try:
        fd = beneath.open_root(folder)
    except NotADirectoryError:
        raise PermanentError(f"voices folder {folder} is not a folder") from None
    except OSError as exc:
        raise PermanentError(f"voices folder {folder} cannot be opened: {exc.strerror}") from None
    try:
        with os.scandir(fd) as entries:  # links and FIFOs too: each is refused by name
            found = sorted(
                folder / e.name
                for e in entries
                if not e.is_dir(follow_symlinks=False)
                and Path(e.name).suffix.lower().lstrip(".") in AUDIO_EXTENSIONS
            )
    finally:
        os.close(fd)
    if not found:
        raise PermanentError(f"voices folder {folder} holds no audio clip")
    if len(found) > MOST_VOICES:
        raise PermanentError(
            f"voices folder {folder} holds {len(found)} clips; at most {MOST_VOICES}"
            " known voices go with a request"
        )
    from dropscribe.audio import probe  # noqa: PLC0415 - av, only where a config has voices

    voices = []
    for path in found:
        clip, _ = _opened(path)
        try:
            seconds = probe.examine(Path(f"/proc/self/fd/{clip}")).duration
        finally:
            os.close(clip)
        if seconds is None or not SHORTEST <= seconds <= LONGEST:
            said = "of unknown length" if seconds is None else f"{seconds:.1f} s long"
            raise PermanentError(
                f"voice clip {path} is {said}; a known voice needs {SHORTEST:g} to"
                f" {LONGEST:g} s of that person speaking"
            )
        extension = path.suffix.lower().lstrip(".")
        voices.append(Voice(path.stem, path, seconds, MIME.get(extension, f"audio/{extension}")))
    return tuple(voices)
