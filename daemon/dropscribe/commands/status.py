"""``dropscribe status``: the daemon, each endpoint's state, each inbox's counts, every
file not done with why and what to do (``report``), and what was learned of models. It
only reads the ledger, which a running daemon may be writing; SQLite's WAL makes that
safe (and PostgreSQL is made for it)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from dropscribe.commands import afters, budgets, fallbacks, report
from dropscribe.commands.console import EXIT_OK, fail, say
from dropscribe.errors import DropscribeError
from dropscribe.ledger import opening
from dropscribe.ledger.interface import Hosts
from dropscribe.ledger.owed import HookCounts, OwedReads
from dropscribe.ledger.store import LEDGER_NAME
from dropscribe.steps import report as steps_report
from dropscribe.transcribe import gone, limits, lookout
from dropscribe.vocab.budget import periods
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from dropscribe.ledger.leases import ClaimRow, HostRow
    from dropscribe.vocab.config import Config


def _no_ledger(cfg: Config, where: str, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.empty(cfg, where), indent=2))  # noqa: T201 - escaped by json
    else:
        say(f"no ledger yet at {where}: the daemon has not run with this state_dir")
    return EXIT_OK


def status(cfg: Config, *, as_json: bool = False) -> int:
    where = cfg.ledger.url if cfg.ledger else str(cfg.state_dir / LEDGER_NAME)
    hosts: list[HostRow] = []
    claims: list[ClaimRow] = []
    try:
        ledger = opening.existing(cfg)
    except (OSError, DropscribeError) as exc:
        return fail(f"cannot read ledger {where}: {exc}")
    if ledger is None:
        return _no_ledger(cfg, where, as_json=as_json)
    try:
        try:
            counts = ledger.counts()
            by_inbox = ledger.inbox_counts()
            unfinished = ledger.unfinished()
            refused = limits.refusals(ledger)
            gone_models = gone.gone_rows(ledger)
            retiring = lookout.notices(ledger)
            passed = ledger.recent_sends()  # fallback34
            steps = steps_report.build(cfg, ledger)  # steps33b: the steps after the transcript
            pending = ledger.afters_pending()  # done17: done files whose after: failed
            spent = ledger.spend_totals(periods(dt.datetime.now(dt.UTC).timestamp()))  # budget34
            hooks = ledger.hook_counts() if isinstance(ledger, OwedReads) else {}  # owed20
            if isinstance(ledger, Hosts):  # a shared ledger: who shares it, what they hold
                hosts, claims = ledger.hosts(), ledger.claims()
        finally:
            ledger.close()
    except (OSError, DropscribeError) as exc:
        return fail(f"cannot read ledger {where}: {exc}")
    found = report.build(cfg, where, by_inbox, unfinished)
    found["passed_over"] = fallbacks.as_json(passed)
    found["steps"] = steps
    found["spend"] = budgets.as_json(cfg, spent)  # budget34
    found["after_pending"] = afters.as_json(cfg, pending)  # done17
    _counted(found["inboxes"], hooks)  # owed20
    if as_json:
        print(json.dumps(found, indent=2))  # noqa: T201 - escaped by json
        return EXIT_OK
    say(f"ledger: {where}")
    for state in (FileState.DONE, FileState.UPLOADING, FileState.FAILED, FileState.ERROR):
        say(f"  {state:<10} {counts.get(state, 0)}")
    report.show(found)
    for line in [*afters.lines(found["after_pending"]), *_hooks(found["inboxes"])]:  # owed20
        say(line)
    for line in steps_report.lines(steps):
        say(line)
    if cfg.ledger is not None:
        _hosts(hosts, claims, cfg.ledger.lease_seconds)
    _models(cfg, gone_models, retiring)
    for line in [*fallbacks.recent(passed), *budgets.lines(found["spend"])]:  # budget34
        say(line)
    _refusals(refused)
    return EXIT_OK


def _counted(inboxes: list[dict[str, Any]], hooks: dict[str, HookCounts]) -> None:
    """owed20: each inbox's ``hooks``: owed (``late`` of them left by a daemon that
    ended), and ``held`` behind a pending after:; zeros when none."""
    for inbox in inboxes:
        inbox["hooks"] = dataclasses.asdict(hooks.get(inbox["name"], HookCounts()))


def _hooks(inboxes: list[dict[str, Any]]) -> list[str]:
    """owed20: each inbox's completion hooks owed (not run yet, or not yet known to
    have run) and held behind a pending after:; nothing when none is."""
    said = []
    for inbox in inboxes:
        owed, late, held = (inbox["hooks"][k] for k in ("owed", "late", "held"))
        parts = [f"{owed} owed"] if owed else []
        if late:
            parts.append(
                f"{late} of them left by a daemon that ended: run late at the next start or rescan"
            )
        if held:
            parts.append(f"{held} held until the file's after: is done")
        if parts:
            said.append(f"  {inbox['name']}: {'; '.join(parts)}")
    return ["hooks owed (each runs at least once):", *said] if said else []


def _refusals(refused: list[tuple[str, str, str, str, str | None]]) -> None:
    """What each (endpoint, model) pair refused, never sent to it again."""
    if refused:
        say("learned from refusals (never sent to that model again):")
        for server, model, param, value, reason in refused:
            say(f"  {server} {model}: {param}={value} ({reason})")


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
