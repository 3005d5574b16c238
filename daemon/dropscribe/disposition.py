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

from dropscribe import names, sidecar

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.config import Inbox

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


def _move(source: Path, folder_root: Path, inbox: Inbox) -> Path:
    try:
        rel = source.relative_to(inbox.path)
    except ValueError:
        rel = Path(source.name)
    target = _free(folder_root / rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(target)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: failed_dir on another filesystem
            raise
        shutil.move(source, target)
    return target


def quarantine(source: Path, inbox: Inbox, report: dict[str, Any]) -> Path:
    """Move a failed recording into ``failed_dir`` and write its error report beside it."""
    target = _move(source, inbox.failed_dir, inbox)
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


def after_success(source: Path, inbox: Inbox, action: str) -> Path | None:
    """Apply ``after:``; returns where the recording went (None: kept or deleted)."""
    if action == "move":
        return _move(source, inbox.done_dir, inbox)
    if action == "delete":
        source.unlink()
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
            rel = path.relative_to(inbox.failed_dir)
            source = Path(report.get("source") or inbox.path / rel)
            yield Failed(path, source, report.get("key"), report.get("reason"))


def restore(item: Failed) -> Path:
    """Put a quarantined recording back where it came from (or beside it if taken)."""
    target = _free(item.source)
    target.parent.mkdir(parents=True, exist_ok=True)
    item.path.rename(target)
    error_report(item.path).unlink(missing_ok=True)
    return target
