"""The state directory: one daemon at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe.errors import AlreadyRunningError, SetupError, StateLostError
from dropscribe.ledger.opening import open_ledger

if TYPE_CHECKING:
    from dropscribe.config.settings import Config
    from dropscribe.ledger.interface import Ledger


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
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunningError(
            errno.EWOULDBLOCK, "another dropscribe is running with this state_dir"
        ) from None
    return fd


def open_state(config: Config) -> tuple[int, Ledger]:
    """Lock the state directory and open the ledger: (the lock's fd, the ledger).

    Raises AlreadyRunningError, or SetupError saying what is wrong with the folder
    (or with a shared ledger's database).
    """
    state_dir = config.state_dir
    try:
        lock = lock_state_dir(state_dir)
    except AlreadyRunningError:
        raise
    except OSError as exc:
        raise SetupError(f"cannot use state_dir {state_dir}: {exc}") from None
    try:
        return lock, open_ledger(config)
    except SetupError:
        os.close(lock)
        raise
    except (OSError, sqlite3.Error) as exc:
        os.close(lock)
        raise SetupError(f"cannot use state_dir {state_dir}: {exc}") from None
