"""learned20: a learned refusal ("this model refuses verbose_json") held for good: one
odd 400 (a proxy's, a server mid-upgrade) downgraded the (endpoint, model) pair until
the ledger was reset. It now holds a day from when it was last said, then the pair is
asked again; and a 400 whose words only echo our request is not learned at all."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any

from conftest import make_wav, named, wait_for
from dropscribe.ledger.queries import REFUSAL_HOLDS_SECONDS
from dropscribe.transcribe import models, refusals
from fakeapi import FakeAPI, Reply, Rules

if TYPE_CHECKING:
    from conftest import Setup

QWEN = "Qwen/Qwen3-ASR-1.7B"
UNTIMED = Rules(frozenset({"json", "text"}))
TIMED = Rules(frozenset({"json", "text", "verbose_json"}), granularities=True)


def settle(setup: Setup, events: list[dict[str, Any]], name: str) -> list[str | None]:
    """Run ``once`` over the inbox with ``name`` new in it (audio of its own, not one
    already transcribed); the response formats asked."""
    sent = len(setup.api.uploads)
    make_wav(setup.inbox / name, freq=300.0 + 40 * len(list(setup.inbox.iterdir())))
    with setup.daemon(once=True):
        wait_for(
            lambda: any(e.get("path", "").endswith(name) for e in named(events, "file.done")),
            what=f"{name} done",
            timeout=30,
        )
    return [u.fields.get("response_format") for u in setup.api.uploads[sent:]]


def verdicts(setup: Setup) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(setup.state / "ledger.sqlite3")) as db:
        rows = db.execute(
            "SELECT value, verdict FROM capabilities WHERE param = 'response_format'"
        ).fetchall()
    return sorted((str(v), str(verdict)) for v, verdict in rows)


def age_refusals(setup: Setup, seconds: float) -> None:
    """Move the ledger's refusals ``seconds`` into the past (the clock, moved)."""
    with closing(sqlite3.connect(setup.state / "ledger.sqlite3")) as db, db:
        db.execute(
            "UPDATE capabilities SET updated = updated - ? WHERE verdict = 'refused'", (seconds,)
        )


def test_a_refused_timed_format_is_asked_again_after_a_day(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """Refused once, the format is not asked within the day; a day later it is, and the
    folder gets its srt from the server's own times again."""
    with FakeAPI(kind="vllm", models={QWEN: UNTIMED}) as api:
        setup.data["endpoints"]["local"].update(kind="vllm", base_url=api.base_url)
        setup.data["defaults"].update(model=QWEN, formats=["srt"])
        setup.api = api
        assert settle(setup, events, "a.wav")[0] == "verbose_json"
        assert named(events, "endpoint.learned")
        assert verdicts(setup) == [("json", "ok"), ("verbose_json", "refused")]
        api.models = {QWEN: TIMED}  # the server upgraded
        assert set(settle(setup, events, "b.wav")) == {"json"}  # within the day
        age_refusals(setup, REFUSAL_HOLDS_SECONDS - 600)
        assert set(settle(setup, events, "c.wav")) == {"json"}  # still within it
        age_refusals(setup, 1200)
        assert settle(setup, events, "d.wav") == ["verbose_json"]
    assert len(named(events, "endpoint.learned")) == 1
    assert verdicts(setup) == [("json", "ok"), ("verbose_json", "ok")]
    assert "-->" in (setup.inbox / "d.srt").read_text()


def test_a_refusal_said_again_holds_another_day(setup: Setup, events: list[dict[str, Any]]) -> None:
    """A day later the server still refuses: learned again, and held a new day."""
    with FakeAPI(kind="vllm", models={QWEN: UNTIMED}) as api:
        setup.data["endpoints"]["local"].update(kind="vllm", base_url=api.base_url)
        setup.data["defaults"].update(model=QWEN, formats=["srt"])
        setup.api = api
        settle(setup, events, "a.wav")
        age_refusals(setup, REFUSAL_HOLDS_SECONDS + 60)
        assert settle(setup, events, "b.wav")[0] == "verbose_json"
        assert set(settle(setup, events, "c.wav")) == {"json"}
    assert len(named(events, "endpoint.learned")) == 2
    assert verdicts(setup) == [("json", "ok"), ("verbose_json", "refused")]
    assert (setup.inbox / "c.srt").exists()


def test_a_400_that_echoes_the_request_is_not_learned(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """A proxy's 400 quoting our fields (response_format=verbose_json, model=…) fails that
    file only: the next file still asks verbose_json, nothing is learned."""
    setup.data["defaults"].update(formats=["srt"])
    echo = (
        "upstream rejected request {'model': 'whisper-1', 'response_format': 'verbose_json',"
        " 'timestamp_granularities': ['segment']}: invalid body"
    )
    setup.api.script.append(Reply(400, {"error": {"message": echo, "type": "proxy_error"}}))
    make_wav(setup.inbox / "a.wav")
    with setup.daemon(once=True):
        wait_for(lambda: named(events, "file.failed"), what="a.wav failed", timeout=30)
    assert settle(setup, events, "b.wav") == ["verbose_json"]
    assert not named(events, "endpoint.learned")
    assert verdicts(setup) == [("verbose_json", "ok")]


def test_refusals_are_told_from_echoes() -> None:
    """Each provider's refusal is learned; an echo of our fields, or a 400 naming a field
    without refusing it, is not."""
    sent = models.Ask("verbose_json", granularities=True, prompt=True)
    vllm = "Currently do not support verbose_json for Qwen/Qwen3-ASR-1.7B"
    assert refusals.refusal(400, None, vllm, sent) == ("response_format", "verbose_json")
    mistral = "body.prompt: Extra inputs are not permitted"
    assert refusals.refusal(422, None, mistral, sent) == models.PROMPT
    both = "timestamp_granularities requires response_format=verbose_json"
    assert refusals.refusal(400, None, both, sent) == models.GRANULARITIES
    echoed = 'bad gateway for {"model": "whisper-1", "response_format": "verbose_json"}: invalid'
    assert refusals.refusal(400, None, echoed, sent) is None
    assert (
        refusals.refusal(400, None, "upstream timeout: response_format=verbose_json", sent) is None
    )
    assert refusals.refusal(400, "response_format", echoed, sent) == (
        "response_format",
        "verbose_json",
    )  # the server's own param says which


def lapsing(ledger: Any, now: list[float]) -> None:
    """On ``ledger`` (whose clock reads ``now[0]``): a refusal said again starts its day
    anew; a confirmation within the day leaves it, one after the day replaces it."""
    x, m = "vllm http://x", "m"
    ledger.record_capability(x, m, "response_format", "verbose_json", "refused", "first")
    now[0] += REFUSAL_HOLDS_SECONDS / 2
    ledger.record_capability(x, m, "response_format", "verbose_json", "ok", None)  # late
    ledger.record_capability(x, m, "response_format", "verbose_json", "refused", "again")
    now[0] += REFUSAL_HOLDS_SECONDS - 60
    day_ago = now[0] - REFUSAL_HOLDS_SECONDS
    assert ledger.capabilities(x, m, day_ago) == [("response_format", "verbose_json", "refused")]
    assert ledger.capabilities_with("refused", day_ago) == [
        (x, m, "response_format", "verbose_json", "again")
    ]
    now[0] += 120
    day_ago = now[0] - REFUSAL_HOLDS_SECONDS
    assert ledger.capabilities(x, m, day_ago) == []
    assert ledger.capabilities_with("refused", day_ago) == []
    assert ledger.capabilities(x, m) == [("response_format", "verbose_json", "refused")]
    ledger.record_capability(x, m, "response_format", "verbose_json", "ok", None)
    assert ledger.capabilities(x, m, day_ago) == [("response_format", "verbose_json", "ok")]


def test_a_refusal_lapses_a_day_after_it_was_last_said_in_sqlite(tmp_path) -> None:
    """SQLite: a refusal holds a day from when it was last said (``lapsing``)."""
    from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger

    now = [1_800_000_000.0]
    ledger = SqliteLedger(tmp_path / LEDGER_NAME, clock=lambda: now[0])
    try:
        lapsing(ledger, now)
    finally:
        ledger.close()


def test_a_refusal_lapses_a_day_after_it_was_last_said_in_postgres(pg_url) -> None:
    """PostgreSQL: a refusal holds a day from when it was last said (``lapsing``)."""
    import pg
    from dropscribe.ledger.places import Places
    from dropscribe.ledger.postgres import PostgresLedger
    from dropscribe.vocab.config import SharedLedger

    now = [1_800_000_000.0]
    settings = SharedLedger(pg_url, pg.PASSWORD, "h", 30.0)
    ledger = PostgresLedger(settings, Places([]), clock=lambda: now[0])
    try:
        lapsing(ledger, now)
    finally:
        ledger.close()
