"""``dropscribe explain``: what dropscribe would do with one file, and what it did. It
only reads the ledger, which a running daemon may be writing (SQLite's WAL makes that
safe, and PostgreSQL is made for it)."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dropscribe.audio.probe import Probe
from dropscribe.commands import afters, fallbacks, report
from dropscribe.commands.console import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.config import rules
from dropscribe.errors import DropscribeError
from dropscribe.jobs import decide
from dropscribe.jobs.decide import How, Then
from dropscribe.jobs.plan import facts_of
from dropscribe.ledger import opening
from dropscribe.ledger.owed import OwedReads, OwedState
from dropscribe.outputs import disposition
from dropscribe.steps import report as steps_report
from dropscribe.timing import timed as timing
from dropscribe.transcribe import kinds
from dropscribe.transcript import CutShort
from dropscribe.vocab import fallbacks as several
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings


def explain(cfg: Config, path: Path) -> int:
    """Say what dropscribe would do with ``path``, and what it did."""
    inbox = rules.inbox_of(cfg, path)
    if inbox is None:
        say(f"{path}: in no inbox ({', '.join(str(i.path) for i in cfg.inboxes)})")
        _left_pending(cfg, path)  # rows18: its inbox taken out of the config
        return EXIT_FAILED
    say(f"{path}")
    say(f"  inbox: {inbox.name} ({inbox.path}), watch: {inbox.watch}")
    if inbox.failed_dir in path.parents:
        for item in disposition.failed(inbox):
            if item.path == path:  # not dropscribe's output: a recording put aside
                return _quarantined(cfg, item)
    reason = rules.ignore_reason(inbox, path, rules.excluded_dirs(cfg))
    if reason is None and path.is_symlink() and not inbox.follow_symlinks:
        reason = "symbolic link (follow_symlinks: false)"
    if reason is None and path.exists() and not path.is_file():
        reason = "not a regular file"
    say(f"  ignored: {reason}" if reason else "  ignored: no, it is transcribed")
    applies = rules.effective_layers(inbox, path)
    for index, layer in enumerate(inbox.layers[2:]):
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
    _sidecars(cfg, inbox, settings, path)
    for item in disposition.failed(inbox):
        if path in {item.path, item.source}:
            _put_aside(cfg, item)
    state = _explain_ledger(cfg, path)
    if state is None:
        return EXIT_CONFIG
    return EXIT_FAILED if reason or state == FileState.FAILED else EXIT_OK


def _sidecars(cfg: Config, inbox: Inbox, settings: FolderSettings, path: Path) -> None:
    """The sidecars' names (those it has, once done) and how speakers are kept."""
    rel = rules.relative(inbox, path)
    folder = rules.sidecar_dir(inbox, settings, path)
    written = _written(cfg, path)
    chain = several.chain(settings.endpoint, settings.model, settings.fallbacks, settings.models)
    names = {  # fallback34c: {model} in name_template is the model of the endpoint taking it
        name: ", ".join(
            rules.sidecar_name(settings.model_copy(update={"model": model}), path, fmt)
            for fmt in settings.formats
        )
        for name, model in chain
    }
    if written:  # the names it really has (a name taken already made it another)
        say(f"  sidecars: {', '.join(p.name for p in written)} in {written[0].parent}")
    elif len(set(names.values())) == 1:
        say(f"  sidecars: {names[settings.endpoint]} in {folder} (relative path {rel})")
    else:
        told = "; ".join(f"on {name}: {sidecars}" for name, sidecars in names.items())
        say(f"  sidecars, by the endpoint that takes it: {told}; in {folder} (relative path {rel})")
    endpoint = cfg.endpoints.get(settings.endpoint)
    voiced = [n for n, _ in chain if (v := cfg.endpoints.get(n)) and v.kind in kinds.KNOWN_VOICES]
    if settings.speakers and voiced:  # fallback34c: on each endpoint of the list that can
        on = f" (on {', '.join(voiced)})" if len(chain) > 1 else ""
        say(
            f"  speakers{on}: if the recording is cut into chunks, the first is transcribed"
            " alone; the others follow with its speakers' voices as known speakers (four at"
            " most, with voices:), so each person keeps one label"
        )
    if endpoint is not None and len(chain) == 1:
        say(f"  timing: {described(endpoint, settings, path)}")
    for name, model in chain if len(chain) > 1 else ():  # routing34b: each one's own
        if (each := cfg.endpoints.get(name)) is not None:
            one = settings.model_copy(update={"endpoint": name, "model": model})
            say(f"  timing on {name} ({model}): {described(each, one, path)}")
    if path.is_file():  # its audio tracks, and which are taken
        from dropscribe.jobs import tracks  # noqa: PLC0415 - PyAV only for a file to read

        for line in tracks.described(path, settings):
            say(line)


def described(endpoint: Endpoint, settings: FolderSettings, path: Path) -> str:
    """Which timing ``path`` with ``settings`` on ``endpoint`` gets: the planner's own
    decision (``decide``, then ``after`` for an answer with text) from the facts known
    before the file is probed or sent."""
    if not settings.timed:
        return "none needed (no sidecar uses times)"
    found = Probe(container="", codec="", duration=None, streams=1)
    facts = facts_of(found, endpoint, settings, path, 0)
    why_not = timing.unusable(settings)
    if decide.asks_timing(facts):
        facts = dataclasses.replace(facts, timing_unusable=why_not)
    plan = decide.decide(facts)
    spans = f"short spans, each one's text placed at its sound ({why_not})"
    if plan.how is How.SPANS:
        return spans
    words = not plan.untimed and (not facts.remote or facts.worded)
    unusable = why_not if decide.asks_timing_after(facts, text=True, words=words) else None
    finish = decide.after(facts, plan, text=True, words=words, unusable=unusable)
    if finish.then is Then.SPANS:
        return spans
    if finish.then is Then.SNAP:
        engine = "the engine" if facts.remote else "the local engine"
        return f"{engine}'s word times, snapped to the speech"
    if finish.then is Then.KEEP:
        return f"the engine's segment times ({why_not})"
    here = f"the answer's own words timed on this machine with {timing.model_of(settings)}"
    if facts.gives_times is None:
        return f"{here}, one request per file (the model gives no times)"
    if plan.untimed:
        return f"{here}; the model is asked for none (it takes the language only without times)"
    return f"{here} (the model gives segment times only)"


def _quarantined(cfg: Config, item: disposition.Failed) -> int:
    """A recording in failed/: which one it was, why, and how to try it again."""
    _put_aside(cfg, item, copy_of=True)
    if _explain_ledger(cfg, item.source) is None:
        return EXIT_CONFIG
    return EXIT_FAILED


def _put_aside(cfg: Config, item: disposition.Failed, *, copy_of: bool = False) -> None:
    """Where a quarantined recording is, why, and how to try it again."""
    say(f"  quarantined: {item.path}")
    say(f"    why: {item.reason or 'unknown (no report beside it)'}")
    if copy_of:
        say(f"    a quarantined copy of {item.source}, not dropscribe's output")
    say(f"    to try again: dropscribe retry -c {cfg.source} {item.path}")


def _written(cfg: Config, path: Path) -> list[Path]:
    """The sidecars the ledger says ``path`` has (none when it cannot say)."""
    try:
        store = opening.existing(cfg)
        if store is None:
            return []
        try:
            row = store.file(path)
        finally:
            store.close()
        shown = json.loads(row.outputs) if row is not None and row.state == "done" else []
        return [Path(p) for p in shown if isinstance(p, str)]
    except (OSError, ValueError, DropscribeError):
        return []  # said by the ledger's own lines below


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


def _left_pending(cfg: Config, path: Path) -> None:
    """rows18: a done file in no inbox may still have an ``after:`` pending, left by an
    inbox taken out of the config: say what the ledger says of it (nothing if unreadable)."""
    try:
        store = opening.existing(cfg)
        if store is None:
            return
        try:
            pending = store.after_pending(path)
        finally:
            store.close()
    except (OSError, DropscribeError):
        return
    for line in afters.told(cfg, pending):
        say(line)


def _owed(hook: OwedState) -> str:
    """owed20: where a hook owed for the file stands."""
    since = report.local_time(hook.owed)
    if hook.held:
        return f"held since {since} until its after: is done (then it runs)"
    if hook.late:
        return (
            f"owed since {since} by a daemon that ended before it ran (or before it was told"
            " it ran): runs late at the next start or rescan"
        )
    return f"owed since {since}, being run by a running daemon"


def _explain_ledger(cfg: Config, path: Path) -> str | None:
    """Print what the ledger knows of ``path``; its state ("" when none), or None (said
    why) if the ledger cannot be read."""
    try:
        store = opening.existing(cfg)
        if store is None:
            say("  ledger: none yet")
            return ""
        try:
            row = store.file(path)
            chunks = store.chunk_plan(row.key) if row is not None else []
            sent = store.sends(row.key) if row is not None else []  # fallback34
            steps = steps_report.explained(cfg, store, row) if row is not None else []
            pending = store.after_pending(path)  # done17
            hooks = store.hooks_of(path) if isinstance(store, OwedReads) else []  # owed20
            job = store.job(row.key) if row is not None and row.state == FileState.DONE else None
        finally:
            store.close()
    except (OSError, DropscribeError) as exc:
        fail(f"cannot read ledger {cfg.ledger.url if cfg.ledger else cfg.state_dir}: {exc}")
        return None
    if row is None:
        say("  ledger: not seen yet")
    else:
        say(f"  ledger: {row.state}" + (f" ({row.error})" if row.error else ""))
        if row.state == FileState.ERROR and row.next_try is not None:  # until16
            say(f"    tried again at {report.local_time(row.next_try)}")
        say(f"    fingerprint: {row.fingerprint[:16]}…, formats done: {row.formats or '-'}")
        for line in fallbacks.told(sent):
            say(line)
        for line in afters.told(cfg, pending):  # done17: done, but its after: is not yet
            say(line)
        if job is not None and (short := CutShort.from_json((job.result or {}).get("cut_short"))):
            say(f"    cut short: {short.told()}")  # short18
    if chunks:  # a long recording part-way through
        done = sum(chunk.result is not None for chunk in chunks)
        say(
            f"    chunks: {done} of {len(chunks)} done, cut at "
            + ", ".join(f"{chunk.cut:.1f} s" for chunk in chunks[1:])
        )
    for line in steps:  # steps33b: each step after the transcript
        say(line)
    for hook in hooks:
        say(f"    hook ({hook.outcome}): {_owed(hook)}")
    return row.state if row is not None else ""
