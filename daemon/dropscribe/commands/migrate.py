"""``dropscribe ledger migrate``: copy this host's SQLite ledger into the shared
PostgreSQL one the config names, so that what is done stays done (and no transcript
is paid for twice) when a site moves to several hosts. The steps after the transcript
come along (their results, the sidecars showing them, their hooks' claims): a summary
is not asked for again, and search finds its words on every host. So do the hooks owed
(hooks20) and the done files' pending ``after:`` actions (done17) that a held hook waits
for: a hook a SQLite daemon owed runs late on the shared ledger (its run, a process of
this host, is no daemon's there), and a move that failed is tried again, then its hook
run with ``moved_to``. leftovers22: so do the spend (a folder's or an endpoint's budget
goes on from what was spent, not from zero), the sends, what language detection heard,
and what each wait is for; each as it is where the target has no host or inbox of its
name. Only this direction: a shared ledger is not copied back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dropscribe.commands.console import EXIT_CONFIG, EXIT_OK, fail, say
from dropscribe.errors import DropscribeError
from dropscribe.ledger import opening
from dropscribe.ledger.schema import COPIED, LAYOUT
from dropscribe.ledger.store import LEDGER_NAME, ReadOnly

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dropscribe.vocab.config import Config

# schema.COPIED, then the steps' (after jobs: a step's result is indexed in its language),
# then what is owed (leftovers21: a held hook with the after: it waits for)
STEPS = ("steps", "step_outputs", "step_hooks")
OWED = ("afters", "hooks")
# leftovers22: budgets spent, endpoints sent to, languages heard, waits owed (their paths
# made portable; heard has none)
KEPT = ("spend", "sends", "heard", "waits")
TABLES = (*COPIED, *(t for t in (*STEPS, *OWED, *KEPT) if t not in COPIED))


def migrate(cfg: Config) -> int:
    """Copy every row the shared ledger lacks; rows it has already are kept as they are."""
    if cfg.ledger is None:
        return fail("ledger migrate: the config names no shared ledger (ledger: url:)")
    source = cfg.state_dir / LEDGER_NAME
    if not source.exists():
        return fail(f"ledger migrate: no SQLite ledger at {source} (see --state-dir)")
    try:
        db = ReadOnly(source)
    except DropscribeError as exc:
        return fail(f"cannot read ledger {source}: {exc}")
    try:
        target = opening.open_ledger(cfg, daemon=False, pool_size=1)
    except DropscribeError as exc:
        db.close()
        say(f"dropscribe: {exc}")
        return EXIT_CONFIG
    try:
        portable: Callable[[str], str] = target.portable  # type: ignore[attr-defined]
        present = db.tables()  # a ledger from before the steps lacks theirs
        for table in (t for t in TABLES if t in present):
            columns = LAYOUT.table(table).names
            rows = _rows(db, table, portable)
            added = target.copy_in(table, columns, rows)  # type: ignore[attr-defined]
            say(f"{table}: {added} copied")
    except DropscribeError as exc:
        return fail(f"ledger migrate stopped: {exc} (run it again: copied rows are kept)")
    finally:
        db.close()
        target.close()
    say(f"done: {source} -> {cfg.ledger.url}")
    return EXIT_OK


def _rows(db: ReadOnly, table: str, portable: Callable[[str], str]) -> Iterator[tuple[Any, ...]]:
    """The table's rows as the shared ledger keeps them: paths relative to inboxes."""
    for values in db.rows(table):
        if table == "files":
            values["path"] = portable(values["path"])
            values["outputs"] = json.dumps([portable(p) for p in json.loads(values["outputs"])])
        elif table in OWED:
            values["path"] = portable(values["path"])
            if table == "hooks":
                values["held"] = bool(values["held"])
        elif table in STEPS:
            values["path"] = portable(values["path"])
            if table == "step_outputs":
                paths = json.loads(values["outputs"] or "[]")
                values["outputs"] = json.dumps([portable(p) for p in paths])
        elif table == "sidecars":
            values["path"] = portable(values["path"])
            values["source"] = portable(values["source"])
        elif table in KEPT and table != "heard":
            values["path"] = portable(values["path"])
        elif table == "chunks":
            values["pause"] = bool(values["pause"])
        yield tuple(values.values())
