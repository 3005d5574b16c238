"""Where a recording goes when dropscribe is finished with it.

Failed: into the inbox's ``failed_dir`` (same subfolders), beside a
``NAME.error.json`` that says why, so it is never re-ingested and a person can
see what happened; ``dropscribe retry`` puts it back. Done: kept, moved to
``done_dir``, or deleted, as the folder says, and only once its sidecars are
durable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import stat as statmod
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe import beneath, names
from dropscribe.outputs import sidecar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dropscribe.ingest.source import Opened
    from dropscribe.vocab.config import Inbox

ERROR_SUFFIX = ".error.json"
NAME_MAX = 255  # bytes in a file name, on every Linux filesystem we write to
REPORT_BYTES = 1 << 20  # an error report we wrote is a few hundred bytes; more is not ours


def occupied(path: Path) -> bool:
    """Something is at ``path`` (a file, a folder, a dangling link). A name that cannot
    even be looked up (too long, say) is not: what is done with it says what is wrong."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _free(dir_fd: int, name: str) -> str:
    """``name`` in the folder ``dir_fd``, or ``stem (2).ext``, ... if that name is taken
    (the stem cut short where the number would not fit in a file name)."""
    if beneath.lstat_at(dir_fd, name) is None:
        return name
    wanted = Path(name)
    for n in range(2, 10_000):
        tail = f" ({n}){wanted.suffix}"
        candidate = names.cut(wanted.stem, NAME_MAX - len(os.fsencode(tail))) + tail
        if beneath.lstat_at(dir_fd, candidate) is None:
            return candidate
    raise FileExistsError(name)


class NotOurs(Exception):  # noqa: N818 - a reason to leave a file alone
    """The name no longer holds the file that was transcribed."""


def _ours(held: Opened, dir_fd: int, name: str) -> bool:
    st = beneath.lstat_at(dir_fd, name)
    return st is not None and (st.st_dev, st.st_ino) == (held.stat.st_dev, held.stat.st_ino)


def _anchor(inbox: Inbox, path: Path) -> tuple[Path, Path]:
    """The root a folder is opened from, and the folder below it: the inbox for what is
    in it; for a failed_dir or done_dir elsewhere, the folder holding it (its own name
    is not resolved, so a link there is refused too)."""
    for root in (inbox.path, inbox.failed_dir.parent, inbox.done_dir.parent):
        with contextlib.suppress(ValueError):
            return root, path.relative_to(root)
    raise NotOurs(f"{path} is outside the inbox and its failed_dir and done_dir")


@contextlib.contextmanager
def _folder(inbox: Inbox, folder: Path, *, make: bool = False) -> Iterator[int]:
    """``folder`` opened (``make``: made first) from its root without following a link:
    a planted ``failed -> /etc`` neither receives recordings nor gets folders made in it."""
    root, rel = _anchor(inbox, folder)
    root_fd = beneath.open_root(root)
    try:
        fd = beneath.make_dirs(root_fd, rel) if make else beneath.open_dir(root_fd, rel)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise NotOurs(
            f"{folder} or a folder on its way is a symbolic link (to"
            f" {os.path.realpath(folder)}); refusing to move recordings through it (set"
            " failed_dir or done_dir to the real folder)"
        ) from None
    finally:
        os.close(root_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _carry(src_fd: int, name: str, dst_fd: int, new: str, held: Opened | None) -> None:
    """A move to another filesystem: copied through descriptors, fsync'd, and only then
    is the original's name removed."""
    fd, st = beneath.open_file(src_fd, name, sys.maxsize)
    try:
        if held is not None and (st.st_dev, st.st_ino) != (held.stat.st_dev, held.stat.st_ino):
            raise NotOurs("replaced just as it was being moved; left in place")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        out = os.open(new, flags, statmod.S_IMODE(st.st_mode), dir_fd=dst_fd)
        try:
            offset = 0
            while sent := os.sendfile(out, fd, offset, 1 << 24):
                offset += sent
            os.fsync(out)
        except BaseException:
            os.unlink(new, dir_fd=dst_fd)
            raise
        finally:
            os.close(out)
    finally:
        os.close(fd)
    os.unlink(name, dir_fd=src_fd)


def _move(source: Path, folder_root: Path, inbox: Inbox, held: Opened | None = None) -> Path:
    """Move ``source`` under ``folder_root``, keeping its place in the inbox. With
    ``held``, only the file that was read: it is renamed first, then checked where it
    landed, and another file found there is put back (``NotOurs``). Both folders are
    opened from their roots' descriptors without following links."""
    if held is not None and held.moved():
        raise NotOurs("renamed or replaced since it was read; left in place")
    try:
        rel = source.relative_to(inbox.path)
    except ValueError:
        rel = Path(source.name)
    there = (folder_root / rel).parent
    with _folder(inbox, source.parent) as src_fd, _folder(inbox, there, make=True) as dst_fd:
        name = _free(dst_fd, source.name)
        try:
            beneath.rename(src_fd, source.name, dst_fd, name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # failed_dir on another filesystem
                raise
            _carry(src_fd, source.name, dst_fd, name, held)
            return there / name
        if held is not None and not _ours(held, dst_fd, name):
            # someone else's file: back where it was
            beneath.rename(dst_fd, name, src_fd, _free(src_fd, source.name))
            raise NotOurs("replaced just as it was being moved; left in place")
    return there / name


def quarantine(
    source: Path, inbox: Inbox, report: dict[str, Any], held: Opened | None = None
) -> Path:
    """Move a failed recording into ``failed_dir`` and write its error report beside it
    (with ``held``: only the very file that failed)."""
    target = _move(source, inbox.failed_dir, inbox, held)
    body = {
        **report,
        "source": str(source),
        "quarantined": str(target),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    data = (names.json_text(body, indent=2) + "\n").encode()
    sidecar.write_all(
        {error_report(target): data},
        within=_anchor(inbox, target)[0],
        mode=held.stat.st_mode if held else None,
    )
    return target


def error_report(quarantined: Path) -> Path:
    """``NAME.error.json`` beside the recording; for a name too long to take the suffix,
    its first bytes, ``~`` and a checksum of the whole name instead (still unique)."""
    name = quarantined.name + ERROR_SUFFIX
    if len(os.fsencode(name)) <= NAME_MAX:
        return quarantined.with_name(name)
    keep = names.cut(quarantined.name, NAME_MAX - len(ERROR_SUFFIX) - 9)
    checksum = zlib.crc32(os.fsencode(quarantined.name))
    return quarantined.with_name(f"{keep}~{checksum:08x}{ERROR_SUFFIX}")


def after_success(held: Opened, inbox: Inbox, action: str) -> Path | None:
    """Apply ``after:`` to the transcribed file; returns where it went (None: kept or
    deleted). Only the file that was read: moved as ``_move`` does, or renamed to a
    temporary name, checked there, and only then deleted (``NotOurs`` otherwise)."""
    if action == "move":
        return _move(held.path, inbox.done_dir, inbox, held)
    if action != "delete":
        return None
    if held.moved():
        raise NotOurs("renamed or replaced since it was transcribed; left in place")
    name = held.path.name
    with _folder(inbox, held.path.parent) as fd:
        doomed = _free(fd, sidecar.temp_name(held.path).name)
        beneath.rename(fd, name, fd, doomed)
        if not _ours(held, fd, doomed):
            beneath.rename(fd, doomed, fd, _free(fd, name))
            raise NotOurs("replaced just as it was being deleted; left in place")
        os.unlink(doomed, dir_fd=fd)
    return None


@dataclass(frozen=True)
class Failed:
    """A recording waiting in a failed folder."""

    path: Path
    source: Path  # where it came from, and where retry puts it back
    key: str | None
    reason: str | None


def failed(inbox: Inbox, refused: Callable[[Path, str], None] | None = None) -> Iterator[Failed]:
    """Every quarantined recording of an inbox, with what its report says. The folder is
    walked from its root's descriptor without following links: a link (the failed_dir
    itself, a folder or a file in it) is passed to ``refused`` with why, never entered."""
    root, rel = _anchor(inbox, inbox.failed_dir)
    try:
        root_fd = beneath.open_root(root)
    except OSError:
        return
    try:
        top = beneath.open_dir(root_fd, rel)
    except FileNotFoundError:
        return
    except OSError as exc:
        if refused is not None:
            refused(inbox.failed_dir, _why(exc))
        return
    finally:
        os.close(root_fd)
    try:
        for sub, fd, files, others in beneath.walk(top):
            folder = inbox.failed_dir / sub
            for name in others:
                if refused is not None:
                    refused(folder / name, "a symbolic link or not a regular file; not followed")
            for name in files:
                path = folder / name
                if name.endswith(ERROR_SUFFIX) or sidecar.is_temp(path):
                    continue
                yield _failed(inbox, fd, path)
    finally:
        os.close(top)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link, or one on its way; not followed"
    return exc.strerror or str(exc)


def _failed(inbox: Inbox, folder_fd: int, path: Path) -> Failed:
    report: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, RecursionError):  # attack21: nested deep
        data = beneath.read_file(folder_fd, error_report(path).name, REPORT_BYTES)
        loaded = json.loads(data.decode("utf-8"))
        report = loaded if isinstance(loaded, dict) else {}
    # Back where the inbox's own layout says, never where a report says: a report is a
    # file in the inbox, and anyone who can write there can plant one.
    source = inbox.path / path.relative_to(inbox.failed_dir)
    key = report.get("key") if isinstance(report.get("key"), str) else None
    reason = report.get("reason") if isinstance(report.get("reason"), str) else None
    return Failed(path, source, key, reason)


def restore(item: Failed, inbox: Inbox) -> Path:
    """Put a quarantined recording back where it came from (or beside it if taken); both
    folders opened from their roots without following links, so a link planted in the
    failed folder or in the inbox is refused before anything is moved or made."""
    there = item.source.parent
    with (
        _folder(inbox, item.path.parent) as src_fd,
        _folder(inbox, there, make=True) as dst_fd,
    ):
        st = beneath.lstat_at(src_fd, item.path.name)
        if st is None or not statmod.S_ISREG(st.st_mode):
            raise NotOurs("no longer a regular file; left in place")
        name = _free(dst_fd, item.source.name)
        try:
            beneath.rename(src_fd, item.path.name, dst_fd, name)
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # failed_dir on another filesystem
                raise
            _carry(src_fd, item.path.name, dst_fd, name, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(error_report(item.path).name, dir_fd=src_fd)
    return there / name
