"""The SQL the SQLite search index's triggers share, for transcripts (``fulltext``) and
steps' results (``fulltext_steps``): our own text, never a user's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def safe(row: str) -> str:
    """The row's result where it is JSON, else an empty object (json_each would raise)."""
    return f"(CASE WHEN json_valid({row}.result) THEN {row}.result ELSE '{{}}' END)"


def inserting(delete: bool) -> tuple[str, str]:
    """``INSERT INTO search_text (…)`` and the values' first item: for a contentless
    table a delete is an insert of the ``'delete'`` command with the very values."""
    into = "INSERT INTO search_text (" + ("search_text, " if delete else "")
    return into + "rowid, text, speaker)", "'delete', " if delete else ""


def triggers(
    name: str, table: str, index: Callable[[str], str], forget: Callable[[str], str]
) -> list[str]:
    """Triggers keeping the index in step with ``table``'s results, in the same
    transaction as each write: ``index`` a row's entries, ``forget`` them."""
    made = f"CREATE TRIGGER IF NOT EXISTS {name}_"
    return [
        f"{made}insert AFTER INSERT ON {table} BEGIN {index('new')} END",
        (
            f"{made}update AFTER UPDATE OF result, state ON {table}"
            f" BEGIN {forget('old')} {index('new')} END"
        ),
        f"{made}delete AFTER DELETE ON {table} BEGIN {forget('old')} END",
    ]
