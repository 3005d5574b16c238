"""What ``status`` and ``explain`` say of done files whose ``after:`` (move, delete)
failed (done17, the ledger's ``afters``): the file is done, its sidecars written; the
action is pending, with the last error, and tried again at each rescan and at start."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dropscribe.commands import report

if TYPE_CHECKING:
    from dropscribe.ledger.afters import AfterRow

ACTION = (
    "nothing, once {why} is fixed: tried again at each rescan and at start (no new"
    " upload); or move or delete the recording yourself"
)


def as_json(rows: list[AfterRow]) -> list[dict[str, Any]]:
    """``status --json``'s ``after_pending``: one entry a file still in its inbox (a
    recording moved or deleted by hand since has nothing pending)."""
    return [
        {
            "path": row.path,
            "inbox": row.inbox,
            "state": "done",
            "after": row.action,
            "reason": row.error,
            "tries": row.tries,
            "since": report.local_time(row.since),
            "last_try": report.local_time(row.updated),
            "action": ACTION.format(why="the " + _target(row.action)),
        }
        for row in rows
        if os.path.lexists(row.path)
    ]


def lines(items: list[dict[str, Any]]) -> list[str]:
    """``status``'s lines for people."""
    if not items:
        return []
    said = ["done, but after: pending (the recording is still in its inbox):"]
    for item in items:
        tried = f"failed {item['tries']} time(s) since {item['since']}"
        said += [
            f"  {item['path']}: after: {item['after']} {tried}",
            f"    why: {item['reason']}",
            f"    to do: {item['action']}",
        ]
    return said


def told(row: AfterRow | None) -> list[str]:
    """``explain``'s lines for one file."""
    if row is None:
        return []
    since = report.local_time(row.since)
    when = f"{row.tries} tries since {since}; tried again at each rescan and at start"
    return [f"    after: {row.action} pending: {row.error} ({when})"]


def _target(action: str) -> str:
    return "done_dir" if action == "move" else "inbox folder"
