"""The reporting commands: status, retry and explain. They read (retry also writes) the
ledger while a daemon may be running; SQLite's WAL makes that safe."""

from __future__ import annotations

import enum
import os
import sqlite3
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import yaml

from dropscribe import names
from dropscribe.config import rules
from dropscribe.ledger.store import LEDGER_NAME, Ledger
from dropscribe.outputs import disposition
from dropscribe.transcribe import limits

if TYPE_CHECKING:
    from pathlib import Path
    from typing import TextIO

    from dropscribe.config import settings

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _print(*parts: object, file: TextIO | None = None) -> None:
    """``print``, with names and server messages escaped (they may hold escape codes)."""
    print(names.shown(" ".join(map(str, parts))), file=file or sys.stdout)


def _fail(message: str) -> int:
    _print(f"dropscribe: {message}", file=sys.stderr)
    return EXIT_CONFIG


def status(cfg: settings.Config) -> int:
    path = cfg.state_dir / LEDGER_NAME
    if not path.exists():
        _print(f"no ledger yet at {path}: the daemon has not run with this state_dir")
        return EXIT_OK
    try:
        ledger = Ledger(path)
        counts = ledger.counts()
        failures = ledger.latest_failures()
        refused = limits.refusals(ledger)
        ledger.close()
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"cannot read ledger {path}: {exc}")
    _print(f"ledger: {path}")
    for state in ("done", "uploading", "failed", "error"):
        _print(f"  {state:<10} {counts.get(state, 0)}")
    if failures:
        _print("latest failures:")
        for row in failures:
            _print(f"  {row.path}: {row.error}")
    if refused:
        _print("learned from refusals (never sent to that model again):")
        for server, model, param, value, reason in refused:
            _print(f"  {server} {model}: {param}={value} ({reason})")
    return EXIT_OK


def retry(cfg: settings.Config, paths: list[Path]) -> int:
    """Move quarantined recordings back and reset their attempts; the daemon picks them up."""
    try:
        ledger = Ledger(cfg.state_dir / LEDGER_NAME)
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"cannot open ledger in {cfg.state_dir}: {exc}")
    wanted = set(paths)
    found: set[Path] = set()
    problems = 0
    try:
        for inbox in cfg.inboxes:
            for item in disposition.failed(inbox):
                if wanted and not wanted & {item.path, item.source}:
                    continue
                found |= {item.path, item.source}
                # Forget first: a running daemon sees the file come back at once.
                try:
                    ledger.forget_failure(item.source, item.key)
                except (OSError, sqlite3.Error) as exc:
                    return _fail(f"cannot write ledger in {cfg.state_dir}: {exc}")
                try:
                    back = disposition.restore(item, inbox)
                except (OSError, disposition.NotOurs) as exc:
                    why = getattr(exc, "strerror", None) or exc
                    _print(f"{item.path}: cannot move back: {why}", file=sys.stderr)
                    problems += 1
                    continue
                _print(f"{back}: queued again (was: {item.reason or 'unknown reason'})")
    finally:
        ledger.close()
    for missing in sorted(wanted - found):
        _print(f"{missing}: not a quarantined recording", file=sys.stderr)
        problems += 1
    if not found and not wanted:
        _print("nothing is quarantined")
    return EXIT_FAILED if problems else EXIT_OK


def explain(cfg: settings.Config, path: Path) -> int:
    """Say what dropscribe would do with ``path``, and what it did."""
    inboxes = [i for i in cfg.inboxes if path == i.path or i.path in path.parents]
    if not inboxes:
        _print(f"{path}: in no inbox ({', '.join(str(i.path) for i in cfg.inboxes)})")
        return EXIT_FAILED
    inbox = max(inboxes, key=lambda i: len(i.path.parts))
    _print(f"{path}")
    _print(f"  inbox: {inbox.name} ({inbox.path}), watch: {inbox.watch}")
    reason = rules.ignore_reason(inbox, path, rules.excluded_dirs(cfg))
    if reason is None and path.is_symlink() and not inbox.follow_symlinks:
        reason = "symbolic link (follow_symlinks: false)"
    if reason is None and path.exists() and not path.is_file():
        reason = "not a regular file"
    _print(f"  ignored: {reason}" if reason else "  ignored: no, it is transcribed")
    rel = rules.relative(inbox, path)
    for index, layer in enumerate(inbox.layers[2:]):
        applies = rules.effective_layers(inbox, path)
        mark = "applies" if layer in applies else "does not apply"
        what = " ".join(
            f"{k}: {v}"
            for k, v in (("match", layer.match), ("folder", layer.folder))
            if v is not None
        )
        _print(f"  rule {index} ({what}): {mark}")
    settings = rules.effective(inbox, path)
    shown = asdict(settings)
    if settings.hook is not None:
        shown["hook"] = settings.hook.model_dump(exclude_none=True)
    text = yaml.safe_dump({"settings": _plain(shown)}, sort_keys=False, allow_unicode=True)
    for line in text.splitlines():  # as a person writes them in the config
        _print(f"  {line}")
    folder = rules.sidecar_dir(inbox, settings, path)
    sidecars = ", ".join(rules.sidecar_name(settings, path, fmt) for fmt in settings.formats)
    _print(f"  sidecars: {sidecars} in {folder} (relative path {rel})")
    for item in disposition.failed(inbox):
        if path in {item.path, item.source}:
            _print(f"  quarantined: {item.path}")
            _print(f"    why: {item.reason or 'unknown (no report beside it)'}")
            _print(f"    to try again: dropscribe retry -c {cfg.source} {item.path}")
    if not _explain_ledger(cfg.state_dir / LEDGER_NAME, path):
        return EXIT_CONFIG
    return EXIT_FAILED if reason else EXIT_OK


def _plain(value: Any) -> Any:
    """``value`` as YAML writes it plainly: enums by value, paths and tuples as text and lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _explain_ledger(ledger: Path, path: Path) -> bool:
    """Print what the ledger knows of ``path``; False (said why) if it cannot be read."""
    if not ledger.exists():
        _print("  ledger: none yet")
        return True
    try:
        store = Ledger(ledger)
        try:
            row = store.file(path)
            chunks = store.chunk_plan(row.key) if row is not None else []
        finally:
            store.close()
    except (OSError, sqlite3.Error) as exc:
        _fail(f"cannot read ledger {ledger}: {exc}")
        return False
    if row is None:
        _print("  ledger: not seen yet")
    else:
        _print(f"  ledger: {row.state}" + (f" ({row.error})" if row.error else ""))
        _print(f"    fingerprint: {row.fingerprint[:16]}…, formats done: {row.formats or '-'}")
    if chunks:  # a long recording part-way through
        done = sum(chunk.result is not None for chunk in chunks)
        _print(
            f"    chunks: {done} of {len(chunks)} done, cut at "
            + ", ".join(f"{chunk.cut:.1f} s" for chunk in chunks[1:])
        )
    return True
