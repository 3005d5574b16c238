"""What ``explain`` and ``status`` say of folders with several endpoints: which endpoint
took a file, and why each one before it was passed over (the ledger's ``sends``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dropscribe.ledger.sends import DONE, FAILED, SENDING, UNUSABLE

if TYPE_CHECKING:
    from dropscribe.ledger.sends import SendRow


def told(rows: list[SendRow]) -> list[str]:
    """``explain``'s lines for one file's job, in the order its endpoints were tried."""
    said = {
        DONE: "took it",
        UNUSABLE: "passed over: {reason}",
        FAILED: "failed it: {reason}",
        SENDING: "a request may be in flight (or was when dropscribe stopped): the file"
        " goes to it again, not to another endpoint",
    }
    return [
        f"    endpoint {row.endpoint} ({row.model}): "
        + said.get(row.state, row.state).format(reason=row.reason)
        + (f" ({row.reason})" if row.state == DONE and row.reason else "")  # fallback34c
        for row in rows
    ]


def recent(rows: list[SendRow]) -> list[str]:
    """``status``'s lines: the latest files passed over by an endpoint, and why."""
    if not rows:
        return []
    return ["passed over (latest first; the file went to the next endpoint of its list):"] + [
        f"  {row.path}: {row.endpoint} ({row.reason})" for row in rows
    ]


def as_json(rows: list[SendRow]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(row) for row in rows]
