"""``dropscribe status`` and ``explain``: what the ledger holds, and what dropscribe
would do with one file and did. They only read the ledger, which a running daemon may be
writing; SQLite's WAL makes that safe (and PostgreSQL is made for it)."""

from __future__ import annotations

import datetime as dt
import enum
import os
import sqlite3
from typing import TYPE_CHECKING, Any

import yaml

from dropscribe.commands.console import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.config import rules
from dropscribe.errors import DropscribeError
from dropscribe.ledger import opening
from dropscribe.ledger.store import LEDGER_NAME
from dropscribe.outputs import disposition
from dropscribe.timing import timed as timing
from dropscribe.transcribe import gone, kinds, limits, lookout
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.ledger.leases import ClaimRow, HostRow
    from dropscribe.vocab.config import Config


def status(cfg: Config) -> int:
    where = cfg.ledger.url if cfg.ledger else str(cfg.state_dir / LEDGER_NAME)
    hosts: list[HostRow] = []
    claims: list[ClaimRow] = []
    try:
        ledger = opening.existing(cfg)
        if ledger is None:
            say(f"no ledger yet at {where}: the daemon has not run with this state_dir")
            return EXIT_OK
        try:
            counts = ledger.counts()
            failures = ledger.latest_failures()
            refused = limits.refusals(ledger)
            gone_models = gone.gone_rows(ledger)
            retiring = lookout.notices(ledger)
            if cfg.ledger is not None:  # a PostgresLedger: who shares it, what they hold
                hosts, claims = ledger.hosts(), ledger.claims()  # type: ignore[attr-defined]
        finally:
            ledger.close()
    except (OSError, sqlite3.Error, DropscribeError) as exc:
        return fail(f"cannot read ledger {where}: {exc}")
    say(f"ledger: {where}")
    for state in (FileState.DONE, FileState.UPLOADING, FileState.FAILED, FileState.ERROR):
        say(f"  {state:<10} {counts.get(state, 0)}")
    if cfg.ledger is not None:
        _hosts(hosts, claims, cfg.ledger.lease_seconds)
    if failures:
        say("latest failures:")
        for row in failures:
            say(f"  {row.path}: {row.error}")
    _models(cfg, gone_models, retiring)
    if refused:
        say("learned from refusals (never sent to that model again):")
        for server, model, param, value, reason in refused:
            say(f"  {server} {model}: {param}={value} ({reason})")
    return EXIT_OK


def _models(
    cfg: Config,
    gone_models: list[tuple[str, str, str | None]],
    retiring: list[lookout.Notice],
) -> None:
    """Models gone now, and models in use that will be shut down."""
    if gone_models:
        say("models no longer served (their files wait; tried hourly and after a reload):")
        for server, model, reason in gone_models:
            say(f"  {server} {model}: {reason}")
    known = [n for n in retiring if n.model in lookout.models_of(cfg)]
    if known:
        say("models that will be shut down (set another model: before then):")
        for line in lookout.lines(known, dt.datetime.now(dt.UTC).date()):
            say(f"  {line}")


def _hosts(hosts: list[HostRow], claims: list[ClaimRow], lease: float) -> None:
    """The daemons sharing the ledger, and what each holds now."""
    say("hosts:" if hosts else "hosts: none running")
    for row in hosts:
        state = "running" if row.beat_age < lease else "silent"
        say(
            f"  {row.host} ({row.run}, {row.version}): {state}, last heartbeat"
            f" {row.beat_age:.0f} s ago, {row.claims} claimed"
        )
    if claims:
        say("claimed now:")
        for claim in claims:
            left = f"lease {claim.left:.0f} s" if claim.left > 0 else "lease ran out"
            say(f"  {claim.path}: {claim.host}, for {claim.age:.0f} s ({left})")


def explain(cfg: Config, path: Path) -> int:
    """Say what dropscribe would do with ``path``, and what it did."""
    inboxes = [i for i in cfg.inboxes if path == i.path or i.path in path.parents]
    if not inboxes:
        say(f"{path}: in no inbox ({', '.join(str(i.path) for i in cfg.inboxes)})")
        return EXIT_FAILED
    inbox = max(inboxes, key=lambda i: len(i.path.parts))
    say(f"{path}")
    say(f"  inbox: {inbox.name} ({inbox.path}), watch: {inbox.watch}")
    reason = rules.ignore_reason(inbox, path, rules.excluded_dirs(cfg))
    if reason is None and path.is_symlink() and not inbox.follow_symlinks:
        reason = "symbolic link (follow_symlinks: false)"
    if reason is None and path.exists() and not path.is_file():
        reason = "not a regular file"
    say(f"  ignored: {reason}" if reason else "  ignored: no, it is transcribed")
    rel = rules.relative(inbox, path)
    for index, layer in enumerate(inbox.layers[2:]):
        applies = rules.effective_layers(inbox, path)
        mark = "applies" if layer in applies else "does not apply"
        what = " ".join(
            f"{k}: {v}"
            for k, v in (("match", layer.match), ("folder", layer.folder))
            if v is not None
        )
        say(f"  rule {index} ({what}): {mark}")
    settings = rules.effective(inbox, path)
    shown = settings.model_dump()
    if settings.hook is not None:
        shown["hook"] = settings.hook.model_dump(exclude_none=True)
    text = yaml.safe_dump({"settings": _plain(shown)}, sort_keys=False, allow_unicode=True)
    for line in text.splitlines():  # as a person writes them in the config
        say(f"  {line}")
    folder = rules.sidecar_dir(inbox, settings, path)
    sidecars = ", ".join(rules.sidecar_name(settings, path, fmt) for fmt in settings.formats)
    say(f"  sidecars: {sidecars} in {folder} (relative path {rel})")
    endpoint = cfg.endpoints.get(settings.endpoint)
    if settings.speakers and endpoint is not None and endpoint.kind in kinds.KNOWN_VOICES:
        say(
            "  speakers: if the recording is cut into chunks, the first is transcribed alone;"
            " the others follow with its speakers' voices as known speakers (four at most,"
            " with voices:), so each person keeps one label"
        )
    if endpoint is not None:
        say(f"  timing: {timing.described(endpoint, settings)}")
    for item in disposition.failed(inbox):
        if path in {item.path, item.source}:
            say(f"  quarantined: {item.path}")
            say(f"    why: {item.reason or 'unknown (no report beside it)'}")
            say(f"    to try again: dropscribe retry -c {cfg.source} {item.path}")
    if not _explain_ledger(cfg, path):
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


def _explain_ledger(cfg: Config, path: Path) -> bool:
    """Print what the ledger knows of ``path``; False (said why) if it cannot be read."""
    try:
        store = opening.existing(cfg)
        if store is None:
            say("  ledger: none yet")
            return True
        try:
            row = store.file(path)
            chunks = store.chunk_plan(row.key) if row is not None else []
        finally:
            store.close()
    except (OSError, sqlite3.Error, DropscribeError) as exc:
        fail(f"cannot read ledger {cfg.ledger.url if cfg.ledger else cfg.state_dir}: {exc}")
        return False
    if row is None:
        say("  ledger: not seen yet")
    else:
        say(f"  ledger: {row.state}" + (f" ({row.error})" if row.error else ""))
        say(f"    fingerprint: {row.fingerprint[:16]}…, formats done: {row.formats or '-'}")
    if chunks:  # a long recording part-way through
        done = sum(chunk.result is not None for chunk in chunks)
        say(
            f"    chunks: {done} of {len(chunks)} done, cut at "
            + ", ".join(f"{chunk.cut:.1f} s" for chunk in chunks[1:])
        )
    return True
