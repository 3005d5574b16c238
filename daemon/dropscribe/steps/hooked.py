"""The folder's hook after the steps (chat33): once every step of a file shows its
result, outcome ``steps`` (the hook ran at ``done`` already, before the steps)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe.outputs import hooks
from dropscribe.steps import sidecars

if TYPE_CHECKING:
    from dropscribe.ledger.interface import FileRow
    from dropscribe.ledger.steprows import StepRows
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.steps import Step


def run(
    rows: StepRows,
    row: FileRow,
    inbox: str,
    settings: FolderSettings,
    steps: list[Step],
    outputs: list[Path],
) -> None:
    """The hook, its sidecars the transcript's and the steps', and ``steps`` naming
    each step's; nothing while a step does not show its result yet."""
    source = Path(row.path)
    key = str(row.key)
    if settings.hook is None or any(
        rows.step_shown(source, s.name) != (key, sidecars.shown_as(s.shaping_hash(), settings))
        for s in steps
    ):
        return
    written = rows.step_sidecars(source)
    shown = {s.name: written.get(s.name, []) for s in steps}
    every = dict.fromkeys([*map(str, outputs), *(p for ps in shown.values() for p in ps)])
    hooks.run(
        settings.hook,
        {
            "file": row.path,
            "inbox": inbox,
            "outcome": "steps",
            "sidecars": list(every),
            "steps": shown,
            "moved_to": None,
            "error": None,
        },
    )
