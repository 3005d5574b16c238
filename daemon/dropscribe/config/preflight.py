"""What check-config looks at beyond the file: can this machine, as this user, run it?

Run as the unit's ``ExecStartPre``, it sees what the daemon will see (the same user,
sandbox and folders), so a service that cannot work fails to start with the reason
instead of failing every file after paying for its upload.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe.config import rules

if TYPE_CHECKING:
    from dropscribe.vocab.config import Config


KEYS = ("output_dir", "voices")  # a folder's settings that name folders it writes or reads


def writable(folder: Path) -> bool:
    """``folder`` can be written, or made (its nearest existing parent can be written)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def read_only(folder: Path) -> bool:
    """``folder`` (or its nearest existing parent) is on a read-only mount (EROFS): under
    systemd with ProtectSystem=strict, a folder outside the unit's ReadWritePaths=."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
            except OSError:
                return False
    return False


def endpoints_used(config: Config) -> set[str]:
    """Every endpoint some folder or rule sends files to: each level's endpoint and the
    rest of its list (``endpoint: [a, b, c]``)."""
    return {
        name
        for inbox in config.inboxes
        for layer in inbox.layers
        for name in (layer.values.get("endpoint"), *(layer.values.get("fallbacks") or ()))
        if isinstance(name, str)
    }


def real(path: Path) -> Path:
    """``path`` with its links followed; never raises (a link loop stays as it is, where
    ``Path.resolve`` raised RuntimeError: a traceback for a bad state_dir)."""
    return type(path)(os.path.realpath(path))


def same(one: Path, other: Path) -> bool:
    """Whether ``one`` and ``other`` are one folder: by their paths with links followed,
    or by device and inode where both are there (attack20: a bind mount of the inbox,
    or the same NFS export mounted twice, is the inbox under another path)."""
    if real(one) == real(other):
        return True
    try:
        return os.path.samestat(one.stat(), other.stat())
    except (OSError, RuntimeError):  # not there (yet), or a link loop
        return False


def state_dir_clash(config: Config) -> str | None:
    """Why ``state_dir`` cannot be where it is: an inbox itself, or a folder the daemon
    writes recordings or transcripts into for one (attack20: output_dir, done_dir,
    failed_dir, a voices: folder). The daemon makes its state_dir and everything directly
    in it private (0700, 0600): the recordings, or the transcripts, closed to those who
    share them (attack19)."""
    for what, path in _shared(config):
        if same(path, config.state_dir):
            return (
                f"state_dir {config.state_dir} is {what} {path} itself: the daemon makes"
                " its state_dir and everything directly in it private, what is shared"
                f" there too; give state_dir a folder of its own in {config.source}"
            )
    return None


def _shared(config: Config) -> list[tuple[str, Path]]:
    """Every folder of recordings or sidecars the config names, and what it is."""
    found = []
    for inbox in config.inboxes:
        found += [("inbox", inbox.path)]
        found += [("failed_dir", inbox.failed_dir), ("done_dir", inbox.done_dir)]
        for layer in inbox.layers:
            found += [(key, Path(layer.values[key])) for key in KEYS if key in layer.values]
    return found


def state_dir_owner(config: Config) -> str | None:
    """Why ``state_dir`` cannot be used for whose it is: another user's folder (root's
    aside: a volume or an emptyDir the daemon may write but not own). Its owner may
    chmod it open again, read what the modes no longer guard, rename the ledger or put
    links in it, whatever the daemon tightens (attack20: a state_dir under /tmp made
    first by another user was used, said not private, and run on)."""
    try:
        owner = config.state_dir.stat().st_uid
    except OSError:
        return None  # not there yet: the daemon makes it, its own
    if owner in {os.geteuid(), 0}:
        return None
    try:
        name = f"user {pwd.getpwuid(owner).pw_name} (uid {owner})"
    except KeyError:
        name = f"uid {owner}"
    return (
        f"state_dir {config.state_dir} belongs to {name}, not to this user (uid"
        f" {os.geteuid()}): its owner could open it again and read or replace the ledger;"
        f" chown it to this user, or give state_dir a folder of its own in {config.source}"
        + (" (or run this as the user the daemon runs as)" if os.geteuid() == 0 else "")
    )


def problems(config: Config) -> list[str]:
    """Every reason this config cannot run here (empty: it can)."""
    found = [clash] if (clash := state_dir_clash(config)) else []
    if (foreign := state_dir_owner(config)) is not None:
        found.append(foreign)
    user = f"uid {os.geteuid()}"
    if not writable(config.state_dir):
        found.append(f"state_dir {config.state_dir} cannot be written by this user ({user})")
    used = endpoints_used(config)
    for name, endpoint in config.endpoints.items():
        if (
            endpoint.kind == "local"
            and name in used
            and not importlib.util.find_spec("faster_whisper")
        ):
            found.append(
                f"endpoints.{name}: kind: local needs faster-whisper, which is not installed"
                " here: pip install 'dropscribe[local]' (into the same environment)"
            )
    for inbox in config.inboxes:
        settings = rules.effective(inbox, inbox.path / "x.wav")
        if settings.output_dir is None and inbox.path.is_dir() and read_only(inbox.path):
            found.append(
                f"inbox {inbox.path} is on a read-only file system here: its sidecars go beside"
                " the recordings (under systemd: not in the unit's ReadWritePaths=; `dropscribe"
                f" service install -c {config.source}` adds every inbox and output folder)"
            )
        elif settings.output_dir is None and inbox.path.is_dir() and not writable(inbox.path):
            found.append(
                f"inbox {inbox.path} cannot be written by this user ({user}): its sidecars go"
                " beside the recordings (make it group-writable for the service's group, or"
                " set output_dir)"
            )
    return found


def warnings(config: Config) -> list[str]:
    """What works, but likely not as meant."""
    return [
        f"inbox {inbox.path} is inside inbox {outer.path}: its files belong to the inner"
        " one (rules of the outer one do not apply to them)"
        for inbox in config.inboxes
        for outer in config.inboxes
        if outer is not inbox and outer.path in inbox.path.parents
    ] + [
        f"state_dir {config.state_dir} and inbox {inbox.path}: one is inside the other, so"
        " the ledger and its lock live beside the recordings; a folder of its own for each"
        " keeps them apart (the way into the inbox is left open)"
        for inbox in config.inboxes
        if real(inbox.path) in real(config.state_dir).parents
        or real(config.state_dir) in real(inbox.path).parents
    ]
