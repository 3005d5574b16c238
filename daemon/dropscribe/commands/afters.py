"""What ``status`` and ``explain`` say of done files whose ``after:`` (move, delete)
failed (done17, the ledger's ``afters``): the file is done, its sidecars written; the
action is pending, with the last error, and tried again at each rescan and at start.
rows18: unless no rescan looks at the recording any more (its inbox taken out of the
config, the file ignored now): then they say so, and what to do (``sweep.remedy``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from dropscribe.commands import report
from dropscribe.config import rules
from dropscribe.sweep import remedy

if TYPE_CHECKING:
    from dropscribe.ledger.afters import AfterRow
    from dropscribe.vocab.config import Config

ACTION = (
    "nothing, once {why} is fixed: tried again at each rescan and at start (no new"
    " upload); or move or delete the recording yourself"
)


def as_json(cfg: Config, rows: list[AfterRow]) -> list[dict[str, Any]]:
    """``status --json``'s ``after_pending``: one entry a file still in its inbox (a
    recording moved or deleted by hand since has nothing pending; a shared ledger's of
    an inbox this host does not map cannot be looked at: shown). rows18: ``unreached``
    says why no rescan tries it (null: one does)."""
    return [_entry(cfg, row) for row in rows if _there(row.path)]


def _entry(cfg: Config, row: AfterRow) -> dict[str, Any]:
    unreached = rules.unreached(cfg, row.path, row.inbox)
    return {
        "path": row.path,
        "inbox": row.inbox,
        "state": "done",
        "after": row.action,
        "reason": row.error,
        "tries": row.tries,
        "since": report.local_time(row.since),
        "last_try": report.local_time(row.updated),
        "unreached": unreached,
        "action": ACTION.format(why="the " + _target(row.action))
        if unreached is None
        else "not tried again: " + remedy(row.path, row.inbox),
    }


def _there(path: str) -> bool:
    return not path.startswith("/") or os.path.lexists(path)


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
        ]
        if item["unreached"] is not None:  # rows18
            said.append(f"    not tried again: {item['unreached']}")
        said.append(f"    to do: {item['action']}")
    return said


def told(cfg: Config, row: AfterRow | None) -> list[str]:
    """``explain``'s lines for one file."""
    if row is None:
        return []
    since = report.local_time(row.since)
    if (unreached := rules.unreached(cfg, row.path, row.inbox)) is None:
        when = f"{row.tries} tries since {since}; tried again at each rescan and at start"
        return [f"    after: {row.action} pending: {row.error} ({when})"]
    return [
        f"    after: {row.action} pending: {row.error} ({row.tries} tries since {since})",
        f"    not tried again: {unreached}",
        f"    to do: {remedy(row.path, row.inbox)}",
    ]


def _target(action: str) -> str:
    return "done_dir" if action == "move" else "inbox folder"
