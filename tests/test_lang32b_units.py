"""Pure pieces of languages (issue 32), finished: the ``heard`` table on both ledger
backends, and ``config/languagemodel.py``'s checks of a name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dropscribe.config import languagemodel

if TYPE_CHECKING:
    from pathlib import Path

FOUND = [("fr", 0.61), ("en", 0.2), ("de", 0.05)]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_ledger_keeps_what_was_heard_by_content_track_and_detector(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
):
    """What a detector heard is read back for the same content, track and detector only;
    hearing again replaces it."""
    if backend == "sqlite":
        from dropscribe.ledger.store import SqliteLedger

        store: Any = SqliteLedger(tmp_path / "ledger.sqlite3")
    else:
        import pg
        from dropscribe.ledger.places import Places
        from dropscribe.ledger.postgres import PostgresLedger
        from dropscribe.vocab.config import SharedLedger

        url = request.getfixturevalue("pg_url")
        store = PostgresLedger(SharedLedger(url, pg.PASSWORD, "a", 30.0), Places([]))
    try:
        digest = "d" * 64
        assert store.heard(digest, 0, "way base") is None
        store.record_heard(digest, 0, "way base", FOUND)
        assert store.heard(digest, 0, "way base") == FOUND
        assert store.heard(digest, 1, "way base") is None  # another track
        assert store.heard("e" * 64, 0, "way base") is None  # other content
        assert store.heard(digest, 0, "way small") is None  # another detector
        store.record_heard(digest, 0, "way small", [])  # no speech: kept too
        assert store.heard(digest, 0, "way small") == []
        assert store.heard(digest, 0, "way base") is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("base", None),
        ("large-v3", None),
        ("Systran/faster-whisper-small", None),
        ("base.en", "knows English only"),
        ("distil-small.en", "knows English only"),
        ("basse", "no faster-whisper model name"),
    ],
)
def test_a_model_name_is_checked(name: str, refused: str | None, tmp_path: Path):
    """A faster-whisper name or a repository is taken; an English-only or unknown one is not."""
    told: list[tuple[Any, str]] = []
    values = {"language_model": name}
    languagemodel.check(values, tmp_path, ("defaults",), lambda at, why: told.append((at, why)))
    if refused is None:
        assert not told
        assert values == {"language_model": name}
    else:
        [(at, why)] = told
        assert at == ("defaults", "language_model")
        assert refused in why
        assert not values
