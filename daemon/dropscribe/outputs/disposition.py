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
import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.outputs import sidecar

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.config.settings import Inbox
    from dropscribe.ingest.source import Opened

ERROR_SUFFIX = ".error.json"
NAME_MAX = 255  # bytes in a file name, on every Linux filesystem we write to


def occupied(path: Path) -> bool:
    """Something is at ``path`` (a file, a folder, a dangling link). A name that cannot
    even be looked up (too long, say) is not: what is done with it says what is wrong."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _free(target: Path) -> Path:
    """``target``, or ``stem (2).ext``, ... if that name is taken (the stem cut short
    where the number would not fit in a file name)."""
    if not occupied(target):
        return target
    for n in range(2, 10_000):
        tail = f" ({n}){target.suffix}"
        stem = names.cut(target.stem, NAME_MAX - len(os.fsencode(tail)))
        candidate = target.with_name(stem + tail)
        if not occupied(candidate):
            return candidate
    raise FileExistsError(target)


class NotOurs(Exception):  # noqa: N818 - a reason to leave a file alone
    """The name no longer holds the file that was transcribed."""


def _ours(held: Opened, path: Path) -> bool:
    st = os.lstat(path)
    return (st.st_dev, st.st_ino) == (held.stat.st_dev, held.stat.st_ino)


def _move(source: Path, folder_root: Path, inbox: Inbox, held: Opened | None = None) -> Path:
    """Move ``source`` under ``folder_root``, keeping its place in the inbox. With
    ``held``, only the file that was read: it is renamed first, then checked where it
    landed, and another file found there is put back (``NotOurs``)."""
    if held is not None and held.moved():
        raise NotOurs("renamed or replaced since it was read; left in place")
    try:
        rel = source.relative_to(inbox.path)
    except ValueError:
        rel = Path(source.name)
    target = _free(folder_root / rel)
    _folder(target.parent, folder_root)
    try:
        source.rename(target)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: failed_dir on another filesystem (checked just above)
            raise
        shutil.move(source, target)
        return target
    if held is not None and not _ours(held, target):
        target.rename(_free(source))  # someone else's file: back where it was
        raise NotOurs("replaced just as it was being moved; left in place")
    return target


def _folder(folder: Path, root: Path) -> None:
    """Make ``folder`` (under ``root``, a failed_dir or done_dir) and check that no link
    leads it elsewhere: a planted ``failed -> /etc`` must not receive recordings."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.path.realpath(folder) != os.path.normpath(folder):
        raise NotOurs(
            f"{root} or a folder in it is a symbolic link (to {os.path.realpath(folder)});"
            " refusing to move recordings through it (set failed_dir or done_dir to the"
            " real folder)"
        )


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
    sidecar.write_all({error_report(target): data})
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
    doomed = _free(sidecar.temp_name(held.path))
    held.path.rename(doomed)
    if not _ours(held, doomed):
        doomed.rename(_free(held.path))
        raise NotOurs("replaced just as it was being deleted; left in place")
    doomed.unlink()
    return None


@dataclass(frozen=True)
class Failed:
    """A recording waiting in a failed folder."""

    path: Path
    source: Path  # where it came from, and where retry puts it back
    key: str | None
    reason: str | None


def failed(inbox: Inbox) -> Iterator[Failed]:
    """Every quarantined recording of an inbox, with what its report says."""
    if not inbox.failed_dir.is_dir():
        return
    for folder, _dirs, files in os.walk(inbox.failed_dir):
        for name in sorted(files):
            path = Path(folder) / name
            if name.endswith(ERROR_SUFFIX) or sidecar.is_temp(path):
                continue
            report: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                report = json.loads(error_report(path).read_text(encoding="utf-8"))
            # Back where the inbox's own layout says, never where a report says: a
            # report is a file in the inbox, and anyone who can write there can plant one.
            source = inbox.path / path.relative_to(inbox.failed_dir)
            key = report.get("key") if isinstance(report.get("key"), str) else None
            reason = report.get("reason") if isinstance(report.get("reason"), str) else None
            yield Failed(path, source, key, reason)


def restore(item: Failed, inbox: Inbox) -> Path:
    """Put a quarantined recording back where it came from (or beside it if taken)."""
    target = _free(item.source)
    _folder(target.parent, inbox.path)
    item.path.rename(target)
    error_report(item.path).unlink(missing_ok=True)
    return target
