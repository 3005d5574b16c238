"""attack22: what a hostile endpoint's answer holds never ends a job as a crash of ours.
Each of these answers ended its job in ``job.crashed`` (a traceback in the log, the file
quarantined as "internal error", a retryable status counted as the file's crash): a
FastAPI error whose ``loc`` is not a list, a charset that cannot decode with replacements,
a NUL in an error's text (PostgreSQL's text refuses it), a lone surrogate or a deep
nesting in a segment's other fields. Each now says what the server said, or is taken."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

import pg
from conftest import API_KEY, DaemonProcess, Setup, make_wav
from fakeapi import FakeAPI, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    """One attempt per file, the ledger in SQLite or the real PostgreSQL."""
    with FakeAPI(api_key=API_KEY) as api:
        setup = Setup(tmp_path, api)
        setup.data["endpoints"]["local"]["max_attempts"] = 1
        setup.data["defaults"]["formats"] = ["txt", "verbose_json"]
        if request.param == "postgresql":
            secret = tmp_path / "ledger.password"
            secret.write_text(pg.PASSWORD)
            url = request.getfixturevalue("pg_url")
            setup.data["ledger"] = {"url": url, "password_file": str(secret)}
        yield setup


def once(setup: Setup, reply: Reply) -> DaemonProcess:
    """A 1-s recording answered with ``reply`` by ``dropscribe once``: ended, no crash."""
    setup.api.script.append(reply)
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    daemon = DaemonProcess(setup, command="once")
    try:
        daemon.wait(timeout=60)
    finally:
        daemon.kill()
    assert not daemon.named("job.crashed"), daemon
    assert not any("Traceback" in line for line in daemon.raw), daemon
    return daemon


def failed(daemon: DaemonProcess) -> str:
    (event,) = daemon.named("file.failed")
    return str(event["error"])


ERRORS = {  # the answer, and what the file's failure says of it
    "loc null": (Reply(422, {"detail": [{"msg": "bad", "loc": None}]}), "HTTP 422: bad"),
    "loc 5": (Reply(422, {"detail": [{"msg": "bad", "loc": 5}]}), "HTTP 422: 5: bad"),
    "NUL in text": (
        Reply(400, "bad\x00thing\x1b[2J\x9b here", content_type="text/plain"),
        "HTTP 400: bad\ufffdthing\ufffd[2J\ufffd here",
    ),
    "NUL in JSON": (
        Reply(400, {"error": {"message": "a\x00b", "code": "c\x00", "param": "p\x00"}}),
        "HTTP 400: a\ufffdb",
    ),
    "charset undefined": (
        Reply(200, "not json", content_type="text/plain; charset=undefined"),
        "answer is not JSON: not json",
    ),
    "charset idna": (
        Reply(200, "not json", content_type="text/plain; charset=idna"),
        "answer is not JSON: not json",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_a_hostile_error_answer_is_said_not_crashed_on(site: Setup, case: str) -> None:
    """An error body of an odd shape or with control characters, or a 200 in a charset
    that cannot decode: the file fails saying what the server said, one printable line."""
    reply, said = ERRORS[case]
    daemon = once(site, reply)
    assert failed(daemon) == said, daemon
    report = json.loads((site.inbox / "failed" / "a.wav.error.json").read_text())
    assert report["reason"] == said


def test_a_503_with_a_nul_is_an_outage_not_the_files_fault(site: Setup) -> None:
    """A 503 whose text holds a NUL: the endpoint's outage (the file stays in place, its
    attempt given back), never a crash of ours counted against the file."""
    site.data["endpoints"]["local"]["max_attempts"] = 2
    for _ in range(2):
        site.api.script.append(Reply(503, "down\x00", content_type="text/plain"))
    daemon = once(site, Reply(503, "down\x00", content_type="text/plain"))
    assert not daemon.named("file.failed"), daemon
    assert (site.inbox / "a.wav").exists()
    assert all("\x00" not in str(e.get("error", "")) for e in daemon.events), daemon


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def test_a_segments_odd_fields_are_kept_as_they_can_be(site: Setup) -> None:
    """A segment with a lone surrogate in a field's value and name and a field nested 700
    deep: the transcript is done, the surrogates U+FFFD, the field null past 32 levels."""
    segment = {"start": 0, "end": 1, "text": "hello", "note": "a\ud800", "\udc00": 1}
    body = json.dumps({"text": "hello", "duration": 1.0, "segments": [segment]})
    body = body[:-3] + ', "deep": ' + json.dumps(deep(700)) + "}]}"
    daemon = once(site, Reply(200, raw=body.encode()))
    assert daemon.named("file.done"), daemon
    (kept,) = json.loads((site.inbox / "a.verbose.json").read_text())["segments"]
    assert kept["note"] == "a\ufffd"
    assert kept["\ufffd"] == 1
    nested = kept["deep"]
    for _ in range(32):
        (nested,) = nested
    assert nested is None
    assert (site.inbox / "a.txt").read_text().strip() == "hello"
