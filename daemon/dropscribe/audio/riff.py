"""A WAV's chunks as far as its audio, looked at before anything else walks them.

attack19: a WAV is a list of chunks, each an ID and a length, and both Python's ``wave``
(up to the ``data`` chunk) and FFmpeg's demuxer (after it too, for tags, to the end of
the file) step from one to the next. Zeros read as chunks of length 0, eight bytes a
step: a recording followed by 256 MiB of zeros (copied onto a preallocated file, a
recorder that lost power; ``truncate -s 2G``, which takes no disk) kept FFmpeg stepping
for 47 s in every job and every ``explain``, and zeros before the audio kept ``wave``
stepping for 3 s every 32 MiB. So the chunks before ``data`` are counted here, at most
``CHUNKS``, and FFmpeg reads such a file through ``Ending``: to ``FOOTER`` bytes past
its audio, where any tags a recorder writes are.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

from dropscribe.errors import PermanentError

if TYPE_CHECKING:
    from pathlib import Path

CHUNKS = 1000  # chunks before the audio: a recorder writes fewer than 20
FOOTER = 1 << 20  # bytes after the audio FFmpeg may read for tags (LIST, id3)
PLACEHOLDERS = {0, 0xFFFFFFFF}  # a data length a streaming recorder leaves: to the end


def audio_end(path: Path) -> int | None:
    """Where the audio of the WAV at ``path`` ends (its ``data`` chunk's last byte, +1);
    None for a file that is not a RIFF WAVE, one whose ``data`` length is a placeholder
    or that ends before it; PermanentError when ``data`` does not come within ``CHUNKS``."""
    try:
        with path.open("rb") as fh:
            if (head := fh.read(12))[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            at = 12
            for _ in range(CHUNKS):
                fh.seek(at)
                if len(chunk := fh.read(8)) < 8:
                    return None
                length = int.from_bytes(chunk[4:], "little")
                if chunk[:4] == b"data":
                    return None if length in PLACEHOLDERS else at + 8 + length
                at += 8 + length + (length & 1)  # a chunk of odd length is padded
    except OSError:
        return None  # whoever opens it next says why
    raise PermanentError(
        f"not a WAV a recorder writes: no audio within its first {CHUNKS:,} chunks (runs of"
        " zeros read as empty chunks): cut the zeros off, or convert it to FLAC"
    )


def source(path: Path) -> Path | io.RawIOBase:
    """``path`` as FFmpeg should read it: through ``Ending`` when it is a WAV that goes
    on for more than ``FOOTER`` past its audio, else the path itself."""
    end = audio_end(path)
    if end is None or end + FOOTER >= path.stat().st_size:
        return path
    return Ending(path, end + FOOTER)


class Opened(io.RawIOBase):
    """The file at ``path``, unbuffered, as FFmpeg's reader through PyAV: a file-like
    whose ``read`` a subclass bounds."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._raw = path.open("rb", buffering=0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()


class Ending(Opened):
    """The file at ``path`` as if it ended after ``end`` bytes."""

    def __init__(self, path: Path, end: int) -> None:
        super().__init__(path)
        self._end = end

    def read(self, size: int = -1) -> bytes:
        room = max(0, self._end - self._raw.tell())
        return self._raw.read(room if size < 0 else min(size, room)) or b""

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._raw.seek(self._end + offset)
        return self._raw.seek(offset, whence)
