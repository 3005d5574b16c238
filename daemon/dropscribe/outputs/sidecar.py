"""Write sidecars so that a reader (or a crash) never sees half a file.

Each sidecar is written to an unnamed file (O_TMPFILE) in its own folder, or a
hidden temporary file where the filesystem lacks that, fsync'd, given its final
name in one atomic step, and the folder fsync'd. A sidecar is as private as its
recording: it gets the recording's permission bits, never wider than the umask allows
(owner and group are the kernel's: this user, and the folder's group where the folder
is setgid); and it carries its job's mark (``marks``) from before it has a name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe import beneath, names
from dropscribe.errors import SidecarError
from dropscribe.outputs import marks

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.vocab.states import JobKey

TEMP_SUFFIX = ".dropscribe-tmp"

# Read the umask once, at import (main thread): reading it means setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def permissions(recording_mode: int | None) -> int:
    """A sidecar's permission bits: the recording's (``st_mode``; None: everyone's), no
    execute bit, and nothing the umask takes away."""
    allowed = 0o666 & ~_UMASK
    return allowed if recording_mode is None else stat.S_IMODE(recording_mode) & allowed


def _temp_prefix(name: str) -> str:
    """A temporary file's hidden prefix: the start of the sidecar's name, at most 64
    bytes of it, so the temporary name fits wherever the final one does."""
    return f".{names.cut(name, 64)}."


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _write_anonymous(
    folder_fd: int, data: bytes, mode: int, mark: JobKey | None = None
) -> int | None:
    """Write ``data`` to an unnamed, fsync'd file in a folder (Linux O_TMPFILE).

    Nobody sees it, no watcher hears of it, and a crash leaves nothing behind. Returns
    None where the filesystem cannot do this (then a named temp file is used). ``mode``:
    its permission bits from the start (``permissions``); ``mark``: the job it is for.
    """
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        fd = os.open(".", flag | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno in {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}:
            return None
        raise
    try:
        if mark is not None:
            marks.stamp(fd, mark, data)
        _write_fd(fd, data)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_named(target: Path, data: bytes, mode: int, mark: JobKey | None = None) -> Path:
    fd, name = tempfile.mkstemp(
        prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent
    )
    try:
        os.fchmod(fd, mode)  # mkstemp makes it 0600
        if mark is not None:
            marks.stamp(fd, mark, data)
        _write_fd(fd, data)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            Path(name).unlink()
        raise
    os.close(fd)
    return Path(name)


def _publish(fd: int, folder_fd: int, name: str) -> None:
    """Give an O_TMPFILE file its final name, replacing any older version atomically."""
    # linkat(AT_SYMLINK_FOLLOW) on the /proc link; Python only calls linkat, rather
    # than link, when a dir_fd is given.
    source = f"/proc/self/fd/{fd}"
    try:
        os.link(source, name, dst_dir_fd=folder_fd, src_dir_fd=folder_fd, follow_symlinks=True)
    except FileExistsError:
        temp = f"{_temp_prefix(name)}{os.getpid()}.{fd}{TEMP_SUFFIX}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp, dir_fd=folder_fd)
        os.link(source, temp, dst_dir_fd=folder_fd, src_dir_fd=folder_fd, follow_symlinks=True)
        os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)


def _name(temp: int | Path, target: Path, folder_fd: int) -> None:
    """Give a staged sidecar (an O_TMPFILE descriptor, or a hidden file) its name."""
    if isinstance(temp, int):
        _publish(temp, folder_fd, target.name)
    else:
        temp.replace(target)


def _open_folder(folder: Path, within: Path | None) -> int:
    """A sidecar's folder, made if missing. Below ``within`` (the inbox, or an output_dir
    the config names: made and opened as named) it is made one mkdirat at a time and
    opened from ``within``'s descriptor, never through a symbolic link (ELOOP)."""
    if within is None or not folder.is_relative_to(within):
        within, rel = folder, Path()
    else:
        rel = folder.relative_to(within)
    within.mkdir(parents=True, exist_ok=True)
    root = beneath.open_root(within)
    try:
        return beneath.make_dirs(root, rel)
    finally:
        os.close(root)


def write_all(
    files: dict[Path, bytes],
    before_naming: Callable[[], None] | None = None,
    within: Path | None = None,
    *,
    mode: int | None = None,
    mark: JobKey | None = None,
) -> None:
    """Write every sidecar of one source atomically, or raise SidecarError. ``mode``: the
    recording's ``st_mode``, whose permission bits each sidecar gets (``permissions``);
    ``mark``: the job whose mark each carries.

    All contents are written and fsync'd before the first one gets its name, so a
    full disk fails the set before any of it appears; then ``before_naming`` may
    still refuse (by raising: the set is dropped), and each is put in place with one
    atomic step and the folders are fsync'd. Folders below ``within`` are made and
    opened without following links (``_open_folder``).
    """
    folders: dict[Path, int] = {}
    staged: list[tuple[int | Path, Path]] = []
    target: Path | None = None  # the sidecar at hand, for the error
    bits = permissions(mode)
    try:
        for target, data in files.items():
            if target.parent not in folders:
                folders[target.parent] = _open_folder(target.parent, within)
            fd = _write_anonymous(folders[target.parent], data, bits, mark)
            staged.append(
                (fd if fd is not None else _write_named(target, data, bits, mark), target)
            )
        if before_naming is not None:
            before_naming()
        for temp, target in staged:
            _name(temp, target, folders[target.parent])
        for folder_fd in folders.values():
            os.fsync(folder_fd)
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, "") or exc.__class__.__name__
        message = f"{reason}: {exc.strerror or exc}"
        raise SidecarError(exc.errno, message, str(target or exc.filename)) from None
    finally:
        for temp, _ in staged:
            if isinstance(temp, int):
                os.close(temp)
            else:
                with contextlib.suppress(FileNotFoundError):
                    temp.unlink()
        for folder_fd in folders.values():
            os.close(folder_fd)


def temp_name(path: Path) -> Path:
    """A hidden name beside ``path``, one that scans skip."""
    return path.with_name(f"{_temp_prefix(path.name)}{TEMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)
