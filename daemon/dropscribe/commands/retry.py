"""``dropscribe retry``: quarantined recordings put back into their inboxes, their
failures forgotten in the ledger, so the daemon (running or not) takes them again."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dropscribe.commands.console import EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.errors import DropscribeError
from dropscribe.ledger import locked, opening
from dropscribe.ledger.writeturn import TurnTaken
from dropscribe.outputs import disposition
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.ledger.interface import Retrying
    from dropscribe.vocab.config import Config


def retry(cfg: Config, paths: list[Path]) -> int:
    """Move quarantined recordings back and reset their attempts; the daemon picks them up."""
    where = cfg.ledger.url if cfg.ledger else str(cfg.state_dir)
    try:
        ledger: Retrying = opening.open_ledger(cfg, daemon=False, pool_size=1)
    except (OSError, DropscribeError) as exc:
        return held(exc) or fail(f"cannot open ledger in {where}: {exc}")
    wanted = set(paths)
    found: set[Path] = set()
    problems = 0

    def refused(path: Path, why: str) -> None:
        """A link (or a FIFO, a device) in a failed folder: never followed, and said."""
        nonlocal problems
        say(f"{path}: left alone: {why}", file=sys.stderr)
        problems += 1

    try:
        for inbox in cfg.inboxes:
            for item in disposition.failed(inbox, refused):
                if wanted and not wanted & {item.path, item.source}:
                    continue
                found |= {item.path, item.source}
                # Forget first: a running daemon sees the file come back at once.
                try:
                    ledger.forget_failure(item.source, JobKey.parse(item.key) if item.key else None)
                except (OSError, DropscribeError) as exc:
                    return held(exc) or fail(f"cannot write ledger in {where}: {exc}")
                try:
                    back = disposition.restore(item, inbox)
                except (OSError, disposition.NotOurs) as exc:
                    why = getattr(exc, "strerror", None) or exc
                    say(f"{item.path}: cannot move back: {why}", file=sys.stderr)
                    problems += 1
                    continue
                say(f"{back}: queued again (was: {item.reason or 'unknown reason'})")
    finally:
        ledger.close()
    for missing in sorted(wanted - found):
        say(f"{missing}: not a quarantined recording", file=sys.stderr)
        problems += 1
    if not found and not wanted and not problems:
        say("nothing is quarantined")
    return EXIT_FAILED if problems else EXIT_OK


def held(exc: BaseException) -> int:
    """EXIT_FAILED, said, when the ledger's write turn is held by another process (a
    dropscribe stopped with Ctrl-Z, a stuck daemon: lock17), or its database by another
    process's write transaction (review17b); 0 for any other error."""
    if not isinstance(exc.__cause__, TurnTaken) and not locked.busy(exc):
        return 0
    say(f"dropscribe: {exc}; nothing was moved: run retry again once it lets go", file=sys.stderr)
    return EXIT_FAILED
