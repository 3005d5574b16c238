"""Paths below a folder, opened from that folder's descriptor without following links.

Anyone who can write to an inbox can put a symbolic link where dropscribe expects a
folder or a file (``failed -> /etc``, ``voices/Ana.wav -> ~/.ssh/id_rsa``). So a path
below a root (an inbox, a folder the config names) is never opened by name from the
top: it is opened relative to the root's descriptor with ``openat2(2)`` and
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` (Linux 5.6), or, where the kernel lacks it
(``ENOSYS``, or ``EPERM`` under a seccomp filter), one component at a time with
``O_NOFOLLOW``. Either way a link anywhere on the way is refused (``ELOOP``), and so
are ``..`` and absolute paths. Folders are made one ``mkdirat`` at a time, each opened
the same way before the next is made in it; files are read only when they are regular
files no larger than a cap, through the descriptor that was checked.

The root itself is opened as given: it is the config's choice.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import stat as statmod
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437}  # asm-generic numbering
DIRECTORY = os.O_RDONLY | os.O_DIRECTORY
READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY  # a FIFO never blocks an open


class Unavailable(Exception):  # noqa: N818 - a fact about the kernel, not a failure
    """openat2 cannot be used here (too old a kernel, a seccomp filter): walk instead."""


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_usable: list[bool] = []  # [False] once openat2 was found missing


def _openat2(dir_fd: int, rel: str, flags: int, mode: int) -> int:
    """openat2(dir_fd, rel) with no link and nothing outside ``dir_fd`` on the way;
    ``Unavailable`` where the kernel will not (tests replace this to walk instead)."""
    number = SYS_OPENAT2.get(platform.machine())
    if number is None or _usable:
        raise Unavailable
    how = _OpenHow(flags, mode, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
    for _ in range(8):  # EAGAIN: a rename raced the lookup; the kernel asks to try again
        fd = _libc.syscall(
            ctypes.c_long(number),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(os.fsencode(rel)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd >= 0:
            return int(fd)
        code = ctypes.get_errno()
        if code in {errno.ENOSYS, errno.EPERM}:
            _usable.append(False)
            raise Unavailable
        if code != errno.EAGAIN:
            raise OSError(code, os.strerror(code), rel)
    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), rel)


def parts(rel: str | PurePath) -> list[str]:
    """The components of a relative path ('.' dropped); ``ValueError`` for an absolute
    path or a ``..``, which could lead out of the root."""
    path = PurePath(rel)
    if path.is_absolute():
        raise ValueError(f"{rel}: an absolute path where one below a folder is wanted")
    found = [p for p in path.parts if p != "."]
    if ".." in found:
        raise ValueError(f"{rel}: '..' may lead out of the folder; refused")
    return found


def _linked(shown: str) -> OSError:
    """The error for a link met on the way to ``shown``."""
    return OSError(errno.ELOOP, "a symbolic link on the way; not followed", shown)


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return statmod.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _walk_open(dir_fd: int, names: list[str], flags: int, mode: int) -> int:
    """The fallback: each folder on the way opened with O_NOFOLLOW from the one before."""
    current = os.dup(dir_fd)
    try:
        for index, name in enumerate(names):
            last = index == len(names) - 1
            want = (flags if last else os.O_PATH | os.O_DIRECTORY) | os.O_NOFOLLOW
            try:
                following = os.open(name, want | os.O_CLOEXEC, mode, dir_fd=current)
            except OSError as exc:
                shown = "/".join(names[: index + 1])
                if exc.errno in {errno.ENOTDIR, errno.ELOOP} and _is_link(current, name):
                    raise _linked(shown) from None
                raise OSError(exc.errno, exc.strerror, shown) from None
            os.close(current)
            current = following
    except BaseException:
        os.close(current)
        raise
    return current


def open_at(dir_fd: int, rel: str | PurePath, flags: int, mode: int = 0) -> int:
    """Open ``rel`` below the folder ``dir_fd`` holds, following no link on the way or
    at the end (``OSError`` ELOOP), never leaving the folder (``ValueError``)."""
    names = parts(rel)
    if not names:
        names = ["."]
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return _openat2(dir_fd, "/".join(names), flags, mode)
    except Unavailable:
        return _walk_open(dir_fd, names, flags, mode)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.ENOTDIR}:  # which component? the walk says
            return _walk_open(dir_fd, names, flags, mode)
        raise OSError(exc.errno, exc.strerror, os.fspath(rel)) from None


def open_root(path: Path) -> int:
    """A root folder, opened as the config names it (links in its own path followed)."""
    return os.open(path, DIRECTORY | os.O_CLOEXEC)


def open_dir(dir_fd: int, rel: str | PurePath) -> int:
    """The folder ``rel`` below ``dir_fd``, with no link on the way."""
    return open_at(dir_fd, rel, DIRECTORY)


def make_dirs(dir_fd: int, rel: str | PurePath, mode: int = 0o777) -> int:
    """``mkdir -p`` below ``dir_fd`` that never goes through a link: each folder is made
    with mkdirat in the one opened before it, then opened itself without following
    links. Returns the last folder's descriptor."""
    current = os.dup(dir_fd)
    try:
        for name in parts(rel):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=current)
            following = open_at(current, name, DIRECTORY)
            os.close(current)
            current = following
    except BaseException:
        os.close(current)
        raise
    return current


def open_file(dir_fd: int, rel: str | PurePath, cap: int) -> tuple[int, os.stat_result]:
    """A regular file below ``dir_fd`` opened for reading (a FIFO never blocks it), with
    its ``fstat``; ``OSError`` for a link, anything but a regular file (EINVAL), or one
    larger than ``cap`` bytes (EFBIG), checked on the open descriptor."""
    fd = open_at(dir_fd, rel, READ)
    st = os.fstat(fd)
    wrong = _unreadable(st, cap, os.fspath(rel))
    if wrong is not None:
        os.close(fd)
        raise wrong
    return fd, st


def _unreadable(st: os.stat_result, cap: int, shown: str) -> OSError | None:
    if not statmod.S_ISREG(st.st_mode):
        return OSError(errno.EINVAL, "not a regular file", shown)
    if st.st_size > cap:
        return OSError(errno.EFBIG, f"{st.st_size} bytes, more than the {cap} allowed", shown)
    return None


def read_fd(fd: int, cap: int, shown: str = "") -> bytes:
    """All of an open file from its start, at most ``cap`` bytes (EFBIG if there is more)."""
    chunks: list[bytes] = []
    total = 0
    offset = 0
    while total <= cap:
        chunk = os.pread(fd, min(1 << 20, cap + 1 - total), offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        offset += len(chunk)
    raise OSError(errno.EFBIG, f"more than the {cap} bytes allowed", shown)


def read_file(dir_fd: int, rel: str | PurePath, cap: int) -> bytes:
    """The bytes of a regular file below ``dir_fd``, if it holds at most ``cap``."""
    fd, _ = open_file(dir_fd, rel, cap)
    try:
        return read_fd(fd, cap, os.fspath(rel))
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """What ``name`` in the folder ``dir_fd`` is (a link seen as one); None if nothing."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def rename(src_fd: int, src_name: str, dst_fd: int, dst_name: str) -> None:
    """renameat of one name in one folder to one name in another (no path in either)."""
    for name in (src_name, dst_name):
        if len(parts(name)) != 1:
            raise ValueError(f"{name!r}: one file name wanted")
    os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def walk(dir_fd: int) -> Iterator[tuple[PurePath, int, list[str], list[str]]]:
    """Every folder below ``dir_fd`` (itself first), never entering a link: yields its
    path relative to the top, its descriptor (valid until the next step), its regular
    files, and the names it holds that were not followed (links, FIFOs, devices,
    sockets, a folder swapped for a link while walking), all sorted."""
    pending: list[PurePath] = [PurePath()]
    while pending:
        rel = pending.pop()
        try:
            fd = open_dir(dir_fd, rel) if rel.parts else os.dup(dir_fd)
        except OSError:
            yield rel.parent, -1, [], [rel.name]
            continue
        try:
            files: list[str] = []
            others: list[str] = []
            folders: list[str] = []
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.name)
                    elif entry.is_file(follow_symlinks=False):
                        files.append(entry.name)
                    else:
                        others.append(entry.name)
            yield rel, fd, sorted(files), sorted(others)
        finally:
            os.close(fd)
        pending.extend(rel / name for name in sorted(folders, reverse=True))
