"""The state directory: one daemon at a time, and nobody else's to read.

The folder is made 0700 and everything in it (the lock, the ledger with its -wal and
-shm, scratch audio) is this user's alone whatever the umask; a folder found wider is
tightened at start, with a ``state_dir.tightened`` event saying what was."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe.config import preflight
from dropscribe.errors import AlreadyRunningError, LedgerError, SetupError, StateLostError
from dropscribe.ledger.opening import open_ledger

log = structlog.get_logger("dropscribe")

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dropscribe.ledger.interface import Ledger
    from dropscribe.vocab.config import Config


def check(state_dir: Path, lock: int) -> None:
    """Raise StateLostError unless ``state_dir``'s lock file is still the one held."""
    held = os.fstat(lock)
    try:
        st = (state_dir / "lock").stat()
    except OSError as exc:
        why = f"its lock file is gone ({exc.strerror})"
    else:
        if (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino):
            return
        why = "its lock file was replaced"
    raise StateLostError(
        f"state_dir {state_dir} was deleted or replaced while running ({why}); stopping, so"
        " that no second daemon shares the ledger (a restart starts afresh)"
    )


def lock_state_dir(state_dir: Path) -> int:
    """Hold an exclusive lock on the state directory for as long as the daemon runs.

    Two daemons on one ledger would upload files twice; the second one refuses to start.
    """
    try:
        state_dir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    else:
        state_dir.chmod(0o700)  # whatever the umask took
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise AlreadyRunningError(
            errno.EWOULDBLOCK, f"another dropscribe is running with this state_dir{holder}"
        ) from None
    try:  # who holds it, for the next one that is refused (a hint: nothing relies on it)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    return fd


def holder(named: bytes) -> tuple[int, bytes] | None:
    """The process a lock file's text (``named``) names, and its command line (its
    arguments joined by spaces); None when it names none that runs."""
    try:
        pid = int(named.split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid, command


def _holder(fd: int) -> str:
    """ " (pid N: its command line)" of the process named in the lock file, if it runs."""
    try:
        found = holder(os.pread(fd, 32, 0))
    except OSError:
        return ""
    if found is None:
        return ""
    pid, command = found
    shown = command.decode(errors="replace")
    if len(shown) > 200:
        shown = shown[:200] + "…"
    return f" (pid {pid}: {shown})" if shown else f" (pid {pid})"


def make_private(state_dir: Path, spared: Iterable[Path] = ()) -> list[dict[str, str]]:
    """Take from ``state_dir``, and from each file and folder directly in it, every
    permission of group and others; return what was wider (an older dropscribe, a umask
    of 022, a unit's StateDirectoryMode=0755). A folder on the way to one of ``spared``
    (the inboxes) is left as it is: closed, it would close the inbox. What this user may
    not change is said (``state_dir.not_private``) and left: the daemon still runs."""
    tightened: list[dict[str, str]] = []
    inside: list[tuple[Path, int]] = []
    ways = {parent for path in spared for parent in (path, *path.parents)}
    known = _identities(ways)  # attack20: the inbox bind-mounted in here is the inbox
    try:
        with os.scandir(state_dir) as entries:
            inside += [
                (Path(e.path), 0o700 if e.is_dir(follow_symlinks=False) else 0o600)
                for e in entries
                if Path(e.path) not in ways and _identity(e) not in known
            ]
    except OSError as exc:
        log.warning("state_dir.not_private", path=str(state_dir), error=str(exc))
    for path, allowed in [(state_dir, 0o700), *inside]:
        try:
            _tighten(path, allowed, tightened, follow=path == state_dir)
        except OSError as exc:
            log.warning("state_dir.not_private", path=str(path), error=str(exc))
    return tightened


def _identities(paths: Iterable[Path]) -> set[tuple[int, int]]:
    """The (device, inode) of each of ``paths`` that is there."""
    found = set()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


def _identity(entry: os.DirEntry[str]) -> tuple[int, int] | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _tighten(
    path: Path, allowed: int, tightened: list[dict[str, str]], *, follow: bool = False
) -> None:
    """``path``'s permission bits & ``allowed``, through a descriptor (a link's target
    only with ``follow``); noted in ``tightened`` when that took something away."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.ENXIO, errno.ENOENT}:  # a link, a socket, gone
            return
        raise
    try:
        st = os.fstat(fd)
        was = stat.S_IMODE(st.st_mode)
        if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and was & ~allowed:
            os.fchmod(fd, was & allowed)
            tightened.append(
                {"path": str(path), "was": f"{was:04o}", "now": f"{was & allowed:04o}"}
            )
    finally:
        os.close(fd)


def open_state(config: Config) -> tuple[int, Ledger]:
    """Lock the state directory and open the ledger: (the lock's fd, the ledger).

    Raises AlreadyRunningError, or SetupError saying what is wrong with the folder
    (or with a shared ledger's database).
    """
    state_dir = config.state_dir
    for clash in (preflight.state_dir_clash(config), preflight.state_dir_owner(config)):
        if clash is not None:
            raise SetupError(clash)  # before anything is made or tightened there
    try:
        lock = lock_state_dir(state_dir)
    except AlreadyRunningError:
        raise
    except OSError as exc:
        raise SetupError(f"cannot use state_dir {state_dir}: {exc}") from None
    inboxes = [preflight.real(inbox.path) for inbox in config.inboxes]
    tightened = make_private(preflight.real(state_dir), inboxes)  # never raises: it says
    try:
        ledger = open_ledger(config)
    except SetupError:
        os.close(lock)
        raise
    except (OSError, LedgerError) as exc:
        os.close(lock)
        raise SetupError(f"cannot use state_dir {state_dir}: {exc}") from None
    if tightened:  # said once the state_dir is in use (else its error is the one line)
        log.warning("state_dir.tightened", state_dir=str(state_dir), changed=tightened)
    return lock, ledger
