"""The folder's hook after the steps (chat33): once every step of a file shows its
result, outcome ``steps`` (the hook ran at ``done`` already, before the steps).

One host runs it (stepsfence): two hosts that finish a file's last two steps at once
both see every step shown, so the hook for what the steps show is claimed in the ledger
first (one statement; the other host's claim changes nothing) and, in the same write,
owed (hooks20: ``ledger/owed.py``), then run and its row deleted. A crash between the
claim and the run leaves it owed: a later look runs it late (``outputs/late.py``): at
least once. Steps shown anew (their settings, the glossary or the transcript changed)
claim it anew.

lang20: the hook is the one the file's language gives (a rule ``match: {language: de}``):
the folder's forced language, else its transcript's, as ``outputs/late.py`` resolves it
late; the steps themselves run with the folder's settings without a language."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe.ledger.owed import OwedHook, OwedRow
from dropscribe.outputs import late
from dropscribe.steps import sidecars

if TYPE_CHECKING:
    from dropscribe.ledger.interface import FileRow
    from dropscribe.ledger.owed import Owed
    from dropscribe.ledger.steprows import StepRows

    class HookedRows(StepRows, Owed, late.Transcripts):
        """The steps' rows, the hooks owed and the transcripts (both backends have them)."""

    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.settings import FolderSettings, HookModel
    from dropscribe.vocab.steps import Step

log = structlog.get_logger("dropscribe")


def run(
    rows: HookedRows,
    row: FileRow,
    inbox: Inbox,
    settings: FolderSettings,
    steps: list[Step],
    outputs: list[Path],
) -> None:
    """The hook, its sidecars the transcript's and the steps', and ``steps`` naming
    each step's; nothing while a step does not show its result yet, or when its hook
    for these results was claimed already (here, or by another host)."""
    source = Path(row.path)
    hook = _hook(rows, row, inbox, settings)
    key = str(row.key)
    shown_as = {s.name: sidecars.shown_as(s.shaping_hash(), settings) for s in steps}
    if hook is None or any(
        rows.step_shown(source, name) != (key, shown) for name, shown in shown_as.items()
    ):
        return
    written = rows.step_sidecars(source)
    shown = {s.name: written.get(s.name, []) for s in steps}
    every = dict.fromkeys([*map(str, outputs), *(p for ps in shown.values() for p in ps)])
    body = {
        "file": row.path,
        "inbox": inbox.name,
        "outcome": "steps",
        "sidecars": list(every),
        "steps": shown,
        "moved_to": None,
        "error": None,
        "late": False,
    }
    owed = OwedHook(source, "steps", inbox.name, body)
    if not rows.steps_hook_owed(source, fingerprint(key, shown_as, shown), owed):
        log.info("hook.claimed_elsewhere", outcome="steps", reason="its hook was run already")
        return
    late.ran(rows, hook, OwedRow(row.path, "steps", inbox.name, body))


def _hook(
    rows: HookedRows, row: FileRow, inbox: Inbox, settings: FolderSettings
) -> HookModel | None:
    """The folder's hook for this file: with the rules by its language, when a rule of
    the folder matches one (the folder's forced language, else its transcript's)."""
    if not late.routed(inbox):
        return settings.hook
    language = settings.language or late.heard(rows, row.key)
    return late.spoken(inbox, Path(row.path), language).hook


def fingerprint(key: str, shown_as: dict[str, str], sidecars: dict[str, list[str]]) -> str:
    """What a file's steps show: its transcript, each step's result as written and its
    sidecars (as the ledger stores their paths: the same on every host)."""
    blob = json.dumps([key, sorted(shown_as.items()), sorted(sidecars.items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
