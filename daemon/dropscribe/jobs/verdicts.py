"""How a job's end is carried out: the quarantine with its report and ledger row,
``after:`` for a file that is done, and the folder's hook for either."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from dropscribe.config import rules
from dropscribe.outputs import disposition, hooks
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.errors import TranscriptionError
    from dropscribe.ingest.source import Opened
    from dropscribe.jobs.job import Item
    from dropscribe.ledger.interface import Ledger
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.states import JobKey

log = structlog.get_logger("dropscribe")


def fail(
    ledger: Ledger,
    item: Item,
    exc: TranscriptionError,
    key: JobKey | None,
    identity: tuple[int, int, int] | None,
    held: Opened | None,
) -> None:
    """Quarantine the recording with its reason; it is never picked up again by itself.
    With ``held``, only the very file that failed is moved."""
    report = {
        "reason": exc.message,
        "status": exc.status,
        "request_id": exc.request_id,
        "attempts": exc.attempts,
        "key": str(key) if key is not None else None,
    }
    target = None
    try:
        target = disposition.quarantine(item.path, item.inbox, report, held)
    except disposition.NotOurs as err:
        log.warning("file.quarantine_skipped", reason=str(err))
    except OSError as err:
        log.error("file.quarantine_failed", error=err.strerror or str(err))
    if key is not None and identity is not None:
        digest = key.digest
        ledger.record_file(
            item.path, item.inbox.name, identity, digest, key, FileState.FAILED, exc.message
        )
    log.error(
        "file.failed",
        error=exc.message,
        status=exc.status,
        request_id=exc.request_id,
        quarantined=str(target) if target else None,
    )
    settings = rules.effective(item.inbox, item.path)
    hook(settings, item, "failed", [], moved=target, error=exc.message)


def after(item: Item, held: Opened, action: str) -> Path | None:
    """``after:`` for a file that is done; where it went, or None (kept, deleted, or
    left where it is with a warning: its sidecars are safe either way)."""
    try:
        return disposition.after_success(held, item.inbox, action)
    except disposition.NotOurs as exc:
        log.warning("file.after_skipped", after=action, reason=str(exc))
    except OSError as exc:
        log.warning("file.after_failed", after=action, error=exc.strerror or str(exc))
    return None


def hook(
    settings: FolderSettings,
    item: Item,
    outcome: str,
    sidecars: list[Path],
    *,
    moved: Path | None = None,
    error: str | None = None,
) -> None:
    """Run the folder's hook, if it has one (it never raises)."""
    if settings.hook is None:
        return
    hooks.run(
        settings.hook,
        {
            "file": str(item.path),
            "inbox": item.inbox.name,
            "outcome": outcome,
            "sidecars": [str(p) for p in sidecars],
            "moved_to": str(moved) if moved else None,
            "error": error,
        },
    )
