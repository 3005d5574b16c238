"""Write sidecars so that a reader (or a crash) never sees half a file.

Each sidecar is written to a hidden temporary file in its own folder, fsync'd,
renamed over its final name, and the folder fsync'd. All temporaries of one
source are written before the first rename, so a full disk fails the set
before any of it appears.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from dropscribe.errors import SidecarError

TEMP_SUFFIX = ".dropscribe-tmp"

# Read the umask once, at import (main thread): reading it means setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise
    os.close(fd)
    return Path(name)


def write_all(files: dict[Path, bytes]) -> None:
    """Write every sidecar of one source atomically, or raise SidecarError."""
    temps: list[tuple[Path, Path]] = []
    try:
        for target, data in files.items():
            temps.append((_write_temp(target, data), target))
        for temp, target in temps:
            temp.replace(target)
        for folder in {target.parent for target in files}:
            _fsync_dir(folder)
    except OSError as exc:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()
        reason = errno.errorcode.get(exc.errno or 0, "") or exc.__class__.__name__
        message = f"{reason}: {exc.strerror or exc}"
        raise SidecarError(exc.errno, message, str(exc.filename)) from None


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)
