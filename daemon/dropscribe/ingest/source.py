"""A dropped file, opened once: what is hashed, probed and uploaded is what was checked.

The name is looked at once (``lstat``, so a symbolic link is seen as one), then opened
without following links and without blocking (a FIFO or a device would hang or act),
and the descriptor itself is checked: a regular file, the same inode the name showed.
From then on the content is read through ``/proc/self/fd/N``, which names the open
file and not whatever the inbox's name holds by then. ``changed()`` says, after the
upload, whether the content was written to, or the name now holds something else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as statmod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class Unusable(Exception):  # noqa: N818 - a reason to skip a file, not an error
    """The name holds nothing dropscribe transcribes (a link, a FIFO, a folder ...)."""


def identity(st: os.stat_result) -> tuple[int, int, int]:
    """What tells one version of a file from another without reading it."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Opened:
    """An inbox file held open for the length of its job."""

    path: Path  # its name in the inbox: the suffix, the sidecars' names, ``after:``
    fd: int
    stat: os.stat_result  # as opened

    @property
    def identity(self) -> tuple[int, int, int]:
        return identity(self.stat)

    @property
    def content(self) -> Path:
        """A path that reads the opened file, whatever its name holds now."""
        return Path(f"/proc/self/fd/{self.fd}")

    @property
    def recording(self) -> tuple[Path, int]:
        """The file as it was dropped, and which of its audio streams the job is for
        (cutapi19: a track's job reads its track alone from ``content``)."""
        return Path(f"/proc/self/fd/{self.fd}"), 0

    @property
    def sent(self) -> Path:
        """The name the content goes by in an upload: the file's own."""
        return self.path

    @property
    def size(self) -> int:
        """The bytes of ``content``."""
        return self.stat.st_size

    def fingerprint(self) -> str:
        """sha256 of the content, read in chunks (memory stays flat for any size)."""
        with os.fdopen(os.dup(self.fd), "rb") as fh:
            fh.seek(0)
            return hashlib.file_digest(fh, "sha256").hexdigest()

    def written(self) -> bool:
        """The content changed since it was opened (appended to, rewritten)."""
        return identity(os.fstat(self.fd)) != self.identity

    def moved(self) -> bool:
        """The inbox's name no longer holds the opened file (renamed away, replaced)."""
        try:
            st = os.lstat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != (self.stat.st_dev, self.stat.st_ino)

    def changed(self) -> str | None:
        """Why what was read may not be what the inbox's name holds, if it may not."""
        if self.written():
            return "written to while it was being transcribed"
        if self.moved():
            return "renamed or replaced while it was being transcribed"
        return None


@contextlib.contextmanager
def opened(path: Path, *, follow_symlinks: bool = False) -> Iterator[Opened]:
    """Open ``path`` once for reading; raises ``Unusable`` (with the reason to log) for
    anything but a regular file, ``FileNotFoundError`` when it is gone, ``OSError``."""
    st = path.stat() if follow_symlinks else path.lstat()
    if not statmod.S_ISREG(st.st_mode):
        kind = "symbolic link" if statmod.S_ISLNK(st.st_mode) else "not a regular file"
        raise Unusable(kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: a link was put where the file was
            raise Unusable("symbolic link") from None
        raise
    try:
        held = os.fstat(fd)
        if not statmod.S_ISREG(held.st_mode) or held.st_ino != st.st_ino:
            raise Unusable("replaced by something else while being opened")
        yield Opened(path, fd, held)
    finally:
        os.close(fd)
