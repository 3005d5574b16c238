"""The mark on each sidecar we write: whose transcript it is, checkable without the ledger.

A mark names the job (the recording's content digest and the settings key, as
``JobKey`` prints them) and the sha256 of the sidecar's own bytes. It is kept in a
``user.dropscribe`` extended attribute, set on the file before it gets its name, so
the mark appears with the file and goes when the file is replaced. Where the folder's
filesystem keeps no user attributes (some network shares, FAT), it is kept in a
hidden file beside the sidecar instead (``.NAME.dropscribe-mark``, skipped by scans
as every hidden name is), written in the same atomic set as the sidecars.

A mark is proof enough that we wrote the set for this content and these settings,
not a secret: anyone who may write to the folder could forge one, as they could
replace the sidecar itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from typing import TYPE_CHECKING

from dropscribe import names

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.vocab.states import JobKey

XATTR = "user.dropscribe"
FALLBACK_SUFFIX = ".dropscribe-mark"
VERSION = 1
MAX_SIDECAR_BYTES = 1 << 30  # larger than any sidecar we write: not ours, not read
# A filesystem (or a file type) without user attributes says one of these.
UNSUPPORTED = frozenset({errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.ENOSYS})


def of(key: JobKey, data: bytes) -> bytes:
    """The mark of one sidecar with the bytes ``data``, written for the job ``key``."""
    body = {"v": VERSION, "key": str(key), "sha256": hashlib.sha256(data).hexdigest()}
    return json.dumps(body, sort_keys=True).encode()


def stamp(fd: int, key: JobKey, data: bytes) -> bool:
    """Put the mark on the open sidecar ``fd``; False where the filesystem keeps none."""
    try:
        os.setxattr(fd, XATTR, of(key, data))
    except OSError as exc:
        if exc.errno in UNSUPPORTED:
            return False
        raise
    return True


def supported(folder: Path) -> bool:
    """Whether ``folder``'s filesystem keeps user attributes: asked of the folder, or of
    the nearest one that exists (a folder yet to be made is made on its filesystem)."""
    for place in (folder, *folder.parents):
        try:
            os.getxattr(place, XATTR)
        except FileNotFoundError:
            continue
        except OSError as exc:
            return exc.errno not in UNSUPPORTED
        return True
    return True


def fallback(sidecar: Path) -> Path:
    """The hidden file that holds ``sidecar``'s mark where attributes cannot."""
    return sidecar.with_name(_fallback_name(sidecar.name))


def _fallback_name(name: str) -> str:
    return f".{names.cut(name, 200)}{FALLBACK_SUFFIX}"


def is_fallback(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(FALLBACK_SUFFIX)


def carries(folder_fd: int, name: str, key: JobKey) -> bool:
    """Whether the sidecar ``name`` in the folder ``folder_fd`` holds (a regular file, not
    a link) carries the mark of ``key`` over its present bytes: in its attribute, else
    in its hidden fallback file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=folder_fd)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_SIDECAR_BYTES:
            return False
        found = _attribute(fd) or _hidden(folder_fd, _fallback_name(name))
        if found is None or found.get("key") != str(key):  # not read for another job's mark
            return False
        with os.fdopen(os.dup(fd), "rb") as fh:
            data_hash = hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return False
    finally:
        os.close(fd)
    expected = {"v": VERSION, "key": str(key), "sha256": data_hash}
    return found == expected


def _attribute(fd: int) -> dict[str, object] | None:
    with contextlib.suppress(OSError):
        return _parsed(os.getxattr(fd, XATTR))
    return None


def _hidden(folder_fd: int, name: str) -> dict[str, object] | None:
    """A fallback mark file's body (small, regular, not a link), or None."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=folder_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return _parsed(os.read(fd, 4096))
    except OSError:
        return None
    finally:
        os.close(fd)


def _parsed(raw: bytes) -> dict[str, object] | None:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # attack21: a planted mark nested deep says nothing
        return None
    return body if isinstance(body, dict) else None
