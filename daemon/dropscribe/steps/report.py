"""What ``status`` and ``explain`` say of the steps after the transcript (issue 33): each
done file's steps as its settings ask for them now, in one of four states (``pending``:
not done yet, or under way; ``done``; ``failed``: its last try failed, it is tried again
by itself; ``quarantined``: after the chat endpoint's ``max_attempts``, with its reason,
tried again after a reload or a restart), and this month's tokens per chat endpoint.

The shape ``status --json`` gives under ``"steps"``::

    {"counts": {"pending": n, "done": n, "failed": n, "quarantined": n},
     "month": "YYYY-MM", "tokens": [{"endpoint": str, "in": n, "out": n}],
     "files": [{"path": str, "step": str, "state": "pending" | "failed" | "quarantined",
                "attempts": n, "reason": str | null, "action": str}]}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dropscribe.config import rules
from dropscribe.vocab.steps import steps_of

if TYPE_CHECKING:
    from dropscribe.ledger.interface import FileRow
    from dropscribe.ledger.steprows import StepRow, StepRows
    from dropscribe.vocab.config import Config
    from dropscribe.vocab.steps import Step

STATES = ("pending", "done", "failed", "quarantined")
SHOWN = {"running": "pending", "retrying": "failed", "failed": "quarantined", "done": "done"}
LISTED = 200  # steps not done listed by name at most (the counts count them all)


def month_start(now: dt.datetime) -> float:
    """The epoch of the first instant of ``now``'s month (UTC)."""
    return (
        now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
    )


def wanted(cfg: Config, path: Path) -> list[Step]:
    """The steps ``path``'s settings ask for now."""
    inbox = rules.inbox_of(cfg, path)
    if inbox is None:
        return []
    settings = rules.effective(inbox, path)
    return steps_of(settings.chat, settings.summary, settings.translate_to)


def state_of(row: StepRow | None) -> str:
    return "pending" if row is None else SHOWN.get(row.state, "pending")


def entry(cfg: Config, path: str, step: Step, row: StepRow | None) -> dict[str, Any]:
    """One step of one file, for a person: its state, why, and what to do."""
    state = state_of(row)
    found: dict[str, Any] = {
        "path": path,
        "step": step.name,
        "state": state,
        "attempts": row.attempts if row is not None else 0,
        "reason": row.error if row is not None and state != "done" else None,
    }
    if state == "quarantined":
        found["action"] = (
            f"fix the cause (endpoints.{step.chat.endpoint} or the step's settings in"
            f" {cfg.source}), then reload or restart the daemon: it is tried again"
        )
    elif state == "failed":
        found["action"] = "nothing: tried again by itself"
    elif state == "pending":
        found["action"] = "nothing: done by the running daemon (or the next run of once)"
    else:
        found["action"] = "nothing"
    return found


def build(cfg: Config, ledger: object, now: dt.datetime | None = None) -> dict[str, Any]:
    """The steps' part of ``status``, from the ledger (a backend with ``StepRows``)."""
    rows = cast("StepRows", ledger)
    when = now or dt.datetime.now(dt.UTC)
    latest = {(str(r.key), r.step, r.shaping): r for r in reversed(rows.step_states())}
    counts = dict.fromkeys(STATES, 0)
    files: list[dict[str, Any]] = []
    done: list[FileRow] = rows.done_since(0.0)
    for file in done:
        for step in wanted(cfg, Path(file.path)):
            row = latest.get((str(file.key), step.name, step.shaping_hash()))
            state = state_of(row)
            counts[state] += 1
            if state != "done" and len(files) < LISTED:
                files.append(entry(cfg, file.path, step, row))
    start = month_start(when)
    tokens = [
        {"endpoint": name, "in": used[0], "out": used[1]}
        for name, used in sorted(rows.step_tokens(start).items())
    ]
    month = when.astimezone(dt.UTC).strftime("%Y-%m")
    return {"counts": counts, "month": month, "tokens": tokens, "files": files}


def lines(found: dict[str, Any]) -> list[str]:
    """``build``'s answer as lines for people (none when no step was ever asked for)."""
    counts = found["counts"]
    if not any(counts.values()) and not found["tokens"]:
        return []
    out = ["steps: " + ", ".join(f"{state} {counts[state]}" for state in STATES)]
    out += [
        f"  tokens this month ({found['month']}) on {used['endpoint']}:"
        f" {used['in']:,} in, {used['out']:,} out"
        for used in found["tokens"]
    ]
    for item in found["files"]:
        out.append(f"  {item['path']} {item['step']}: {item['state']}")
        if item["reason"]:
            out.append(f"    why: {item['reason']} (after {item['attempts']} attempts)")
        out.append(f"    to do: {item['action']}")
    return out


def explained(cfg: Config, ledger: object, file: FileRow) -> list[str]:
    """One file's steps for ``explain``: each step its settings ask for, its state, the
    tokens it took and the sidecars that show it."""
    rows = cast("StepRows", ledger)
    steps = wanted(cfg, Path(file.path))
    if not steps:
        return []
    known = {(r.step, r.shaping): r for r in reversed(rows.steps_of(file.key))}
    written = rows.step_sidecars(Path(file.path))
    out = ["  steps:"]
    for step in steps:
        row = known.get((step.name, step.shaping_hash()))
        item = entry(cfg, file.path, step, row)
        where = f" on {step.chat.endpoint} ({step.chat.model})"
        used = f", tokens {row.tokens_in:,} in, {row.tokens_out:,} out" if row is not None else ""
        out.append(f"    {step.name}: {item['state']}{where}{used}")
        if item["reason"]:
            out.append(f"      why: {item['reason']} (after {item['attempts']} attempts)")
        if item["state"] != "done":
            out.append(f"      to do: {item['action']}")
        if item["state"] == "done" and written.get(step.name):
            out.append(f"      sidecars: {', '.join(Path(p).name for p in written[step.name])}")
    return out
