"""fallback34's pure pieces: how a list of endpoints and a mapping of models are kept and
merged across levels, and the word each failure gives an endpoint passed over."""

from __future__ import annotations

from typing import Any

import pytest

from dropscribe.errors import EndpointError as Refused
from dropscribe.errors import ModelGone, OutageError, PermanentError, RetryableError
from dropscribe.transcribe import fallback
from dropscribe.vocab import fallbacks
from dropscribe.vocab.settings import FolderSettings


def test_a_list_and_a_mapping_are_kept_as_the_first_endpoint_and_its_model():
    """endpoint: [a, b, c] is endpoint a with fallbacks (b, c); model: {..} gives a's model."""
    settings = FolderSettings(endpoint=["a", "b", "c"], model={"b": "mb", "a": "ma", "c": "mc"})
    assert (settings.endpoint, settings.fallbacks, settings.model) == ("a", ("b", "c"), "ma")
    chain = fallbacks.chain(settings.endpoint, settings.model, settings.fallbacks, settings.models)
    assert chain == [("a", "ma"), ("b", "mb"), ("c", "mc")]


def test_one_model_for_every_endpoint_of_a_list():
    """model: as one name is every endpoint's model."""
    settings = FolderSettings(endpoint=["a", "b"], model="whisper-1")
    assert fallbacks.chain("a", settings.model, settings.fallbacks, settings.models) == [
        ("a", "whisper-1"),
        ("b", "whisper-1"),
    ]


def test_a_level_naming_one_endpoint_ends_the_list_above_it():
    """A rule's endpoint: local means local alone; its model: x ends a mapping above."""
    above = fallbacks.taken_apart({"endpoint": ["a", "b"], "model": {"a": "ma", "b": "mb"}})
    rule = fallbacks.taken_apart({"endpoint": "local", "model": "tiny.en"})
    settings = FolderSettings(**fallbacks.merged([above, rule]))
    assert (settings.endpoint, settings.fallbacks, settings.models) == ("local", (), ())
    assert settings.model == "tiny.en"


def test_a_mapping_below_a_list_picks_the_first_endpoints_model():
    """The list on one level, the mapping on the next: the model is the first endpoint's."""
    levels = [{"endpoint": ["b", "a"]}, {"model": {"a": "ma", "b": "mb"}}]
    settings = FolderSettings(**fallbacks.merged(fallbacks.taken_apart(v) for v in levels))
    assert (settings.endpoint, settings.model) == ("b", "mb")


def test_one_endpoint_keeps_the_key_of_every_folder_as_it_was():
    """A folder with one endpoint shapes its jobs exactly as before: no new key."""
    shaping = FolderSettings(endpoint="a", model="m").shaping()
    assert "fallbacks" not in shaping
    assert "models" not in shaping


@pytest.mark.parametrize("endpoint", [[], ["a", "a"]])
def test_an_empty_or_repeating_list_is_refused(endpoint):
    """endpoint: [] and a name twice are config errors."""
    with pytest.raises(ValueError, match="endpoint"):
        FolderSettings(endpoint=endpoint, model="m")


@pytest.mark.parametrize(
    ("failure", "word"),
    [
        (ModelGone("HTTP 404: gone", status=404), "gone"),
        (Refused("HTTP 429: quota", status=429, code="insufficient_quota"), "quota"),
        (Refused("HTTP 402: pay", status=402), "quota"),
        (Refused("HTTP 401: key", status=401), "refused"),
        (OutageError("no connection"), "down"),
        (OutageError("HTTP 503", status=503), "down"),
        (RetryableError("HTTP 500", status=500), "down"),
    ],
)
def test_each_failure_has_its_word(failure, word):
    """file.fallback's reason for each way an endpoint fails."""
    assert fallback.why(failure) == word


def test_outside_a_turn_nothing_is_raised():
    """Without another endpoint to go to, the uploader waits as it always did."""
    fallback.failed("a", PermanentError("x", status=400))
    fallback.waiting("a", "paused", "why")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sends_are_kept_by_both_ledgers(request, tmp_path, backend):
    """A job's sends (sending, then unusable or done) read back in order from SQLite and
    from a real PostgreSQL, paths as this host names them; status's latest passed over."""
    from pathlib import Path

    from dropscribe.ledger.sends import DONE, SENDING, UNUSABLE
    from dropscribe.vocab.states import JobKey

    key = JobKey("d" * 64, "s" * 16)
    if backend == "sqlite":
        from dropscribe.ledger.store import SqliteLedger

        store: Any = SqliteLedger(tmp_path / "ledger.sqlite3")
        where = tmp_path / "a.wav"
    else:
        import pg
        from dropscribe.ledger.places import Places
        from dropscribe.ledger.postgres import PostgresLedger
        from dropscribe.vocab.config import SharedLedger

        url = request.getfixturevalue("pg_url")
        store = PostgresLedger(
            SharedLedger(url, pg.PASSWORD, "a", 30.0), Places([("calls", Path("/srv/in"))])
        )
        where = Path("/srv/in/a.wav")
    try:
        store.record_send(key, "first", "m1", where, SENDING, None)
        store.record_send(key, "first", "m1", where, UNUSABLE, "quota: HTTP 429")
        store.record_send(key, "second", "m2", where, DONE, None)
        rows = store.sends(key)
        assert [(r.endpoint, r.state, r.reason) for r in rows] == [
            ("first", UNUSABLE, "quota: HTTP 429"),
            ("second", DONE, None),
        ]
        assert rows[0].path == str(where)
        [passed] = store.recent_sends()
        assert (passed.endpoint, passed.model) == ("first", "m1")
    finally:
        store.close()
