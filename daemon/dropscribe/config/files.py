"""The files and folders a config names, checked before they are used.

A path from the config may name a user who does not exist (``~nobody2/x``), hold a
NUL, loop through links; a file it names may be a FIFO nobody writes to (a read
would block a reload for ever), a device (``/dev/zero`` never ends) or a socket.
Each of these is a ``UnusableError`` with the reason, which the loader reports as a
config problem with its file, line and key: never an exception of Python's, and
never a wait.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

SMALL_FILE = 1 << 20  # a config file, a prompt: more than 1 MiB is not one
KEY_FILE = 64 << 10  # an API key or a password
HOLDS_NUL = "holds a NUL character (\\0), which no path, name or header can"
UNNAMEABLE = "holds a character no file name here can (a lone UTF-16 surrogate such as \\ud800)"


class UnusableError(ValueError):
    """A path or file from the config that cannot be used; the message says why."""


def expanded(value: str, base: Path) -> Path:
    """``value`` with ``~`` expanded, relative to ``base`` (the config's folder);
    UnusableError when it cannot name a file."""
    if "\0" in value:
        raise UnusableError(HOLDS_NUL)
    try:
        os.fsencode(value)
    except UnicodeEncodeError:  # YAML's "\uD800": the system call would raise, not say so
        raise UnusableError(UNNAMEABLE) from None
    path = Path(value)
    try:
        path = path.expanduser()
    except RuntimeError:  # ~name of a user this system does not know
        user = value[1:].split("/", 1)[0]
        raise UnusableError(f"{value}: there is no user {user!r} here to expand ~{user}") from None
    return base / path


def resolved(value: str, base: Path) -> Path:
    """``expanded``, with its links resolved (as far as they exist)."""
    path = expanded(value, base)
    loop = f"{path}: its symbolic links go round in a loop"
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        pass  # a part does not exist (yet): resolved as far as it does, below
    except RuntimeError:  # Python < 3.13: a link that leads back to itself
        raise UnusableError(loop) from None
    except OSError as exc:
        # Python 3.13 says ELOOP (and, strict=False, would quietly leave a loop as it is)
        raise UnusableError(
            loop if exc.errno == errno.ELOOP else f"{path}: {exc.strerror or exc}"
        ) from None
    try:
        return path.resolve()
    except RuntimeError:
        raise UnusableError(loop) from None
    except OSError as exc:
        raise UnusableError(f"{path}: {exc.strerror or exc.__class__.__name__}") from None


# The kernel's own trees: files there are views of the running system, not storage
# (/dev/shm is a tmpfs, and a place for scratch files like any other).
VIRTUAL = (Path("/proc"), Path("/sys"), Path("/dev"))


def writable_place(path: Path) -> Path:
    """``path`` (resolved), or UnusableError when it lies in a tree of the kernel's."""
    shm = Path("/dev/shm")  # noqa: S108 - named to be allowed, not used as scratch
    for tree in VIRTUAL:
        if (path == tree or tree in path.parents) and not (path == shm or shm in path.parents):
            raise UnusableError(
                f"{path} is under {tree}, the kernel's view of the running system, not a"
                " folder to keep files in: choose a folder on a disk"
            )
    return path


def read(path: Path, limit: int = SMALL_FILE) -> bytes:
    """The bytes of the regular file ``path``, opened without blocking (a FIFO is
    refused, not waited on) and checked on the open descriptor; at most ``limit``.
    OSError (with the reason in ``strerror``) for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_a_file(st.st_mode)
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"is over {limit} bytes, too big for what it is for")
        chunks = []
        left = limit + 1  # /proc files say 0 bytes; a file may grow while it is read
        while left > 0 and (chunk := os.read(fd, min(left, 65536))):
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"is over {limit} bytes, too big for what it is for")
        return data
    finally:
        os.close(fd)


KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _not_a_file(mode: int) -> OSError:
    if stat.S_ISDIR(mode):
        return OSError(errno.EISDIR, os.strerror(errno.EISDIR))
    what = next((name for test, name in KINDS if test(mode)), "something other than a file")
    return OSError(errno.EINVAL, f"is {what}, not a regular file")


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` under systemd; for root, /var/lib/dropscribe (the shipped
    unit's, so that status, explain and retry from a root shell find its ledger); else
    the XDG state home."""
    if systemd := os.environ.get("STATE_DIRECTORY"):
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/dropscribe")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "dropscribe"


def chosen_state_dir(base: Path, setting: str | None) -> Path:
    """The config's ``state_dir`` (relative to the config's folder), else the default."""
    if setting:
        return (base / Path(setting).expanduser()).resolve()
    return default_state_dir()


def unreadable(exc: OSError | UnicodeDecodeError) -> str:
    """Why a file could not be read, never quoting its bytes (it may hold a key)."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or exc.__class__.__name__


def text(name: str, base: Path, at: tuple[str | int, ...], problem: Any) -> tuple[Path, str] | None:
    """A text file the config names (``prompt_file``, ``glossary_file`` ...), read as
    ``read`` does: its path and its text, or None once ``problem`` was told at ``at``."""
    path: Path | str = name
    try:
        path = expanded(name, base)
        return path, read(path).decode("utf-8")
    except UnusableError as exc:
        problem(at, str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        problem(at, f"cannot read {path}: {unreadable(exc)}")
    return None


def unloadable(folder: Path) -> str | None:
    """Why no loader should open the model ``folder``'s files (attack14): the first
    that is a FIFO (its open would wait for ever), a device, a socket, or a link that
    leads nowhere or round in a loop, or the folder unreadable; None when none is."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        return f"{folder}: {exc.strerror or exc}"
    for entry in entries:
        try:
            mode = entry.stat().st_mode
        except OSError as exc:
            return f"{entry.path}: {exc.strerror or exc}"
        if not stat.S_ISDIR(mode) and not stat.S_ISREG(mode):
            return f"{entry.path}: {_not_a_file(mode).strerror}"
    return None
