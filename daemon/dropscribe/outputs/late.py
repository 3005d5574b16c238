"""hooks20: a hook owed in the ledger (``ledger/owed.py``) is run, then its row goes; one
left by a process that died before its hook ran (or before its row went) is run late.

``deliver`` looks at start and at each full rescan (the steps' thread calls it: a hook
may take its whole ``timeout``, and the main loop never waits for one): the rows of
this host's inboxes owed by runs no longer alive are taken (of several hosts sharing
the ledger, one takes each) and run with the JSON they were owed with, plus ``"late":
true`` (and ``DROPSCRIBE_LATE=1``), with the folder's hook as the config has it now.
A folder whose hook was taken out meanwhile runs none (``hook.dropped``).

owed20: the hook is the one the on-time run had: a done or failed file's settings are
resolved with the language its transcript was asked in (the job row's, else the
folder's forced one), so a hook that only a rule by language sets (``match: {language:
de}``) runs late as it would have on time. The steps' hook is the folder's without a
language, as ``steps/stepper.py`` resolves it on time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe.config import rules
from dropscribe.errors import LedgerError
from dropscribe.outputs import hooks

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.ledger.owed import Owed, OwedRow
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings, HookModel

log = structlog.get_logger("dropscribe")


def ran(ledger: Owed, hook: HookModel | None, row: OwedRow) -> None:
    """Run ``row``'s hook, then its row goes: at once, for the window in which a death
    runs it a second time is this one (at least once, not exactly once); the delete is
    not waited for (owed20: it rides the next commit, ``Owed.hook_ran``)."""
    try:
        if hook is None:  # the folder has no hook now
            log.info("hook.dropped", path=row.path, outcome=row.outcome, reason="no hook now")
            ledger.hook_dropped(row.path, row.outcome)
            return
        hooks.run(hook, row.body)
        ledger.hook_ran(row.path, row.outcome)
    except LedgerError as exc:
        log.warning(
            "ledger.write_failed",
            error=str(exc),
            ledger=ledger.where,
            action="the hook ran (or has none now); it may run once more, late, at the next start",
        )


def deliver(ledger: Owed, config: Config, stopping: Callable[[], bool]) -> int:
    """The hooks owed by runs no longer alive, run late; how many were taken. A row whose
    inbox this host does not have is left to a host that has it. Never raises for the
    ledger (``hook.late_unavailable``: the next look tries again)."""
    inboxes = {inbox.name: inbox for inbox in config.inboxes}
    if stopping():
        return 0
    try:
        taken = ledger.hooks_late(set(inboxes))
    except LedgerError as exc:  # the next look tries again
        log.warning("hook.late_unavailable", error=str(exc), ledger=ledger.where)
        return 0
    for row in taken:
        if stopping():  # taken but not run: the next start finds it owed by a dead run
            break
        settings = settled(inboxes[row.inbox], row)
        log.warning(
            "hook.late",
            path=row.path,
            outcome=row.outcome,
            action="run now: the process that owed it ended before it ran (or before it"
            " was told it ran: then this is its second call), or it waited for an after:"
            " whose recording is gone",
        )
        ran(ledger, settings.hook, row.late())
    return len(taken)


def settled(inbox: Inbox, row: OwedRow) -> FolderSettings:
    """``row``'s folder settings as its on-time hook had them: with the rules by the
    language its file was asked in (``jobs/spoken.py`` routes by the same)."""
    settings = rules.effective(inbox, Path(row.path))
    if row.outcome == "steps" or not any(layer.language for layer in inbox.layers):
        return settings
    language = row.language or settings.language
    return rules.effective(inbox, Path(row.path), language) if language else settings
