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
de}``) runs late as it would have on time; lang20: the steps' hook too, as
``steps/hooked.py`` resolves it on time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from dropscribe.config import rules
from dropscribe.errors import LedgerError
from dropscribe.outputs import hooks
from dropscribe.vocab.language import code_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.ledger.interface import JobRow
    from dropscribe.ledger.owed import Owed, OwedRow
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings, HookModel
    from dropscribe.vocab.states import JobKey

log = structlog.get_logger("dropscribe")


class Transcripts(Protocol):
    """A job's stored transcript (both backends have it): ``heard``."""

    def job(self, key: JobKey) -> JobRow | None: ...


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
    return spoken(inbox, Path(row.path), row.language)


def spoken(inbox: Inbox, path: Path, language: str | None) -> FolderSettings:
    """``path``'s settings with the rules by ``language`` (None: the folder's forced one,
    if it has one); lang20: the steps' hook and a pending ``after:`` tried again are
    resolved so too, on time and late."""
    settings = rules.effective(inbox, path)
    if not routed(inbox):
        return settings
    language = language or settings.language
    return rules.effective(inbox, path, language) if language else settings


def routed(inbox: Inbox) -> bool:
    """Whether a rule of ``inbox`` matches by language (else none is worth looking up)."""
    return any(layer.language for layer in inbox.layers)


def heard(ledger: Transcripts, key: JobKey) -> str | None:
    """lang20: the language (its code) of ``key``'s stored transcript, the one a folder
    that detects routed it by (``jobs/spoken.py`` forces the language it heard); None
    when it is not known."""
    job = ledger.job(key)
    said = job.result.get("language") if job is not None and job.result is not None else None
    return code_of(said) if isinstance(said, str) else None
