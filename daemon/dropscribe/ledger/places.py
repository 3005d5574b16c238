"""Paths as a shared ledger keeps them: relative to the inbox's name, so that hosts
mounting one share at different places agree on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe import names

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


class Places:
    """Paths as the shared ledger keeps them: ``@inbox/relative/path`` for anything
    inside an inbox (hosts may mount the share at different places, but give each
    inbox the same name), the absolute path otherwise."""

    def __init__(self, inboxes: Iterable[tuple[str, Path]]) -> None:
        self.update(inboxes)

    def update(self, inboxes: Iterable[tuple[str, Path]]) -> None:
        """Map the inboxes of a reloaded config (one assignment: readers never see half)."""
        # longest first: an inbox inside another is matched before its parent
        pairs = sorted(((name, names.text(path)) for name, path in inboxes), key=_longest)
        roots = [(name, root.rstrip("/")) for name, root in pairs]
        self._map = (roots, dict(roots))

    def portable(self, text: str) -> str:
        for name, root in self._map[0]:
            if text == root or text.startswith(root + "/"):
                return f"@{name}{text[len(root) :]}"
        return text

    def local(self, text: str) -> str:
        if not text.startswith("@"):
            return text
        name, slash, rest = text[1:].partition("/")
        root = self._map[1].get(name)
        return text if root is None else root + slash + rest


def _longest(pair: tuple[str, str]) -> int:
    return -len(pair[1])
