"""What ``dropscribe status`` reports, as one value (``status --json`` prints it) and
as lines for people. The shape, version 1 (new keys may be added; none change meaning)::

    {"version": 1,
     "ledger": "where the ledger is",
     "daemon": {"running": bool, "pid": int | null},
     "endpoints": [{"name": str, "state": "ok" | "paused" | "unreachable" | "unknown",
                    "reason": str | null, "status": int | null,
                    "next_probe": "ISO 8601 time" | null,
                    "asked": bool (the server asked for the pause: nothing to fix)}],
     "inboxes": [{"name": str, "path": str,
                  "counts": {"done": n, "in_flight": n, "waiting": n, "failed": n,
                             "quarantined": n}}],
     "files": [{"path": str, "inbox": str,
                "state": "quarantined" | "failed" | "waiting" | "in_flight" | "interrupted",
                "reason": str | null, "action": str,
                "next_try": "ISO 8601 time" (waiting for a known moment: tried again then)}],
     "passed_over": [...],  (files an endpoint of their list passed over: ledger/sends.py)
     "steps": {...},  (the steps after the transcript: steps/report.py says its shape)
     "spend": {...}}  (today's and this month's spend: commands/budgets.py)

A file is ``waiting`` when its last try failed and it comes again by itself (with its
endpoint's pause as the reason while the endpoint is paused or unreachable),
``in_flight`` while a running daemon works on it, ``interrupted`` when the daemon
stopped during it, ``failed`` or ``quarantined`` when only ``dropscribe retry`` sends it
again (quarantined: the recording is in the inbox's failed folder, with ``source``)."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.commands.console import say
from dropscribe.config import rules
from dropscribe.ledger import statedir
from dropscribe.outputs import disposition
from dropscribe.transcribe import board

if TYPE_CHECKING:
    from dropscribe.ledger.interface import FileRow
    from dropscribe.vocab.config import Config

VERSION = 1
COUNTED = ("done", "in_flight", "waiting", "failed", "quarantined")


def daemon(cfg: Config) -> dict[str, Any]:
    """Whether a dropscribe holds this state_dir now, asked of its lock (the pid the lock
    file names outlives the daemon, and may be another process's by now), and that pid."""
    try:
        fd = os.open(cfg.state_dir / "lock", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {"running": False, "pid": None}
    try:
        held = _held(fd)
        found = statedir.holder(os.pread(fd, 32, 0)) if held else None
    except OSError:
        found = None
    finally:
        os.close(fd)  # a shared lock taken by the probe goes with it
    if not held:
        return {"running": False, "pid": None}
    return {"running": True, "pid": found[0] if found is not None else None}


def _held(fd: int) -> bool:
    """Whether another process holds the lock on ``fd``'s file: the daemon holds it
    exclusively (``statedir.lock_state_dir``), so a shared lock is refused while it runs.
    (A daemon starting in the microseconds this shared lock is held would be refused.)"""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # a file system without locks: no daemon can hold it either
    return False


def empty(cfg: Config, where: str) -> dict[str, Any]:
    return build(cfg, where, {}, [])


def build(
    cfg: Config, where: str, by_inbox: dict[tuple[str, str], int], unfinished: list[FileRow]
) -> dict[str, Any]:
    running = daemon(cfg)
    endpoints = _endpoints(cfg)
    states = {e["name"]: e for e in endpoints}
    files: list[dict[str, Any]] = []
    counts = {i.name: dict.fromkeys(COUNTED, 0) for i in cfg.inboxes}
    put_aside: set[str] = set()
    for inbox in cfg.inboxes:
        for item in disposition.failed(inbox):
            # attack19: as the ledger keys them (a name not UTF-8 as \xNN: it was told a
            # second time, as failed, and counted so)
            put_aside.update({names.text(item.source), names.text(item.path)})
            counts[inbox.name]["quarantined"] += 1
            files.append(
                {
                    "path": str(item.path),
                    "source": str(item.source),
                    "inbox": inbox.name,
                    "state": "quarantined",
                    "reason": item.reason or "unknown (no report beside it)",
                    "action": f"fix the cause, then: dropscribe retry -c {cfg.source} {item.path}",
                }
            )
    for row in unfinished:
        if row.path in put_aside:
            continue
        entry = _file(cfg, row, states, running)
        files.append(entry)
        if row.inbox in counts and entry["state"] in counts[row.inbox]:
            counts[row.inbox][entry["state"]] += 1
    for (name, state), n in by_inbox.items():
        if name in counts and state == "done":
            counts[name]["done"] = n
    inboxes = [{"name": i.name, "path": str(i.path), "counts": counts[i.name]} for i in cfg.inboxes]
    return {
        "version": VERSION,
        "ledger": where,
        "daemon": running,
        "endpoints": endpoints,
        "inboxes": inboxes,
        "files": files,
    }


def _endpoints(cfg: Config) -> list[dict[str, Any]]:
    known = board.read(cfg.state_dir)
    out = []
    for name in cfg.endpoints:
        entry = known.get(name, {})
        probe = entry.get("next_probe")
        out.append(
            {
                "name": name,
                "state": str(entry.get("state", "unknown")),
                "reason": entry.get("reason"),
                "status": entry.get("status"),
                "next_probe": local_time(probe) if isinstance(probe, int | float) else None,
                "asked": entry.get("asked") is True,
            }
        )
    return out


def local_time(epoch: float) -> str:
    """A moment (epoch seconds) as people read it: local ISO 8601, with its offset."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).astimezone().isoformat(timespec="seconds")


def _file(
    cfg: Config, row: FileRow, endpoints: dict[str, dict[str, Any]], running: dict[str, Any]
) -> dict[str, Any]:
    """One file not done: its state for a person, why, and what to do."""
    entry: dict[str, Any] = {"path": row.path, "inbox": row.inbox, "reason": row.error}
    inbox = next((i for i in cfg.inboxes if i.name == row.inbox), None)
    settings = rules.effective(inbox, Path(row.path)) if inbox is not None else None
    names = [settings.endpoint, *settings.fallbacks] if settings is not None else []
    healths = [(name, endpoints.get(name, {})) for name in names]  # fallback34c: the list's
    reload = f"kill -HUP {running['pid']}" if running["running"] else "run dropscribe again"
    if row.state == "error" and row.next_try is not None:  # wake15's moment; until16: kept
        entry["next_try"] = local_time(row.next_try)
    if row.state == "failed":
        action = f"fix the cause, then: dropscribe retry -c {cfg.source} {row.path}"
        return {**entry, "state": "failed", "action": action}
    if names and all(h.get("state") in {"paused", "unreachable"} for _, h in healths):
        why = "; ".join(  # every endpoint of its list: the endpoints', not the file's
            f"endpoint {name} {h['state']}: {h.get('reason')}"
            + (f"; next probe at {h['next_probe']}" if h.get("next_probe") else "")
            for name, h in healths
        )
        fix = ", ".join(f"endpoints.{name}" for name in names)
        action = (
            f"fix {fix} (api key, base_url, account) in {cfg.source}, then {reload}; it is"
            " sent by itself once an endpoint answers"
        )
        if all(h.get("asked") for _, h in healths):  # the servers asked for these pauses
            action = "nothing: the endpoint's rate limit asked for a pause; sent again after it"
            action += f", at {entry['next_try']}" if "next_try" in entry else ""
        return {**entry, "state": "waiting", "reason": why, "action": action}
    if row.state == "uploading":
        if running["running"]:
            return {**entry, "state": "in_flight", "action": "nothing: under way"}
        return {**entry, "state": "interrupted", "action": "nothing: the next run resumes it"}
    if (row.error or "").startswith("language.unexpected"):  # issue 32
        action = (
            f"add the language to language: (or a rule match: {{language: ..}}) in"
            f" {cfg.source}, then {reload}; until then it waits"
        )
        return {**entry, "state": "waiting", "action": action}
    action = "nothing: tried again at the next rescan (or the next run of once)"
    if "next_try" in entry:  # wake15: a known moment (a budget's turn)
        action = f"nothing: tried again at {entry['next_try']}"
    return {**entry, "state": "waiting", "action": action}


def show(found: dict[str, Any]) -> None:
    """``found`` as lines for people."""
    running = found["daemon"]
    say(f"daemon: running (pid {running['pid']})" if running["running"] else "daemon: not running")
    say("endpoints:")
    for ep in found["endpoints"]:
        state = ep["state"]
        if ep["reason"]:
            state += f": {ep['reason']}"
        if ep["next_probe"]:
            state += f" (next probe at {ep['next_probe']})"
        say(f"  {ep['name']}: {state}")
    count = len(found["inboxes"])
    say(f"{count} inbox{'es' if count != 1 else ''}:")
    for inbox in found["inboxes"]:
        numbers = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in inbox["counts"].items())
        say(f"  {inbox['name']} ({inbox['path']}): {numbers}")
    if found["files"]:
        say("files not done:")
    for item in found["files"]:
        what = item["state"].replace("_", " ")
        if item.get("source"):
            what += f" copy of {item['source']}"
        say(f"  {item['path']}: {what}")
        if item["reason"]:
            say(f"    why: {item['reason']}")
        say(f"    to do: {item['action']}")
