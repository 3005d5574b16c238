"""``once`` must end against a dead endpoint with the shipped defaults (``max_attempts`` 5,
``pause_after_failures`` 5): outages count per endpoint, whichever files they came from, so
the breaker's doubling pauses (30, 60, 120 s...) never hold it back (outage20)."""

from __future__ import annotations

import socket

import pytest

from conftest import DaemonProcess, make_wav
from fakeapi import openai_error

WORKERS = 4
SHIPPED_MAX_ATTEMPTS = 5  # and pause_after_failures 5, backoff_max 60: the defaults


def _refusing_url() -> str:
    """A port on 127.0.0.1 that was bound and closed again: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("files", [3, 6])
@pytest.mark.parametrize("dead", ["refused", "502"])
def test_once_against_a_dead_endpoint_exits_3_within_a_minute(setup, files, dead):
    """once with the shipped defaults, 3 or 6 files and an endpoint that refuses every
    connection (or a gateway without its upstream: 502) exits 3 within a minute, files in
    place, no sidecars, a bounded number of tries."""
    endpoint = setup.data["endpoints"]["local"]
    del endpoint["max_attempts"]  # the shipped 5, as pause_after_failures
    del endpoint["backoff_max"]  # the shipped 60 s: other files' tries come between
    setup.data["workers"] = WORKERS
    if dead == "refused":
        endpoint["base_url"] = _refusing_url()
    else:
        bad_gateway = openai_error(502, "upstream connect error", "server_error")
        setup.api.script.extend(bad_gateway for _ in range(100))
    # each its own content: copies of one recording would wait for each other's end
    recordings = [make_wav(setup.inbox / f"talk{n}.wav", freq=300 + 60 * n) for n in range(files)]
    daemon = DaemonProcess(setup, "once")
    # 20 s on an idle machine (60 s with the tests' patience): the old code's pauses
    # (30 s, then 60, 120...) took 97 s for 3 files and never ended for 6
    try:
        assert daemon.wait(timeout=20) == 3, daemon
    finally:
        daemon.kill()  # the old code's once, still waiting out a pause
    assert sorted(p.name for p in setup.inbox.iterdir()) == sorted(p.name for p in recordings)
    assert not daemon.named("file.failed")
    waiting = daemon.named("file.waiting")
    assert sorted(e["path"] for e in waiting) == sorted(str(p) for p in recordings)
    assert all(e["quarantined"] is False for e in waiting)
    # max_attempts outages in a row rule the endpoint out; uploads already in flight end too
    bound = SHIPPED_MAX_ATTEMPTS + WORKERS - 1
    tries = daemon.named("upload.started")
    assert len(tries) <= bound, [e.get("path") for e in tries]
    if dead == "502":
        assert 1 <= len(setup.api.uploads) <= bound
        assert {u.reply for u in setup.api.uploads} == {"502"}


def test_once_does_not_wait_out_outage_pauses_before_max_attempts(setup):
    """With pause_after_failures 1 (below max_attempts 5) once against a refusing endpoint
    still exits 3 within a minute: it counts outages instead of waiting 30+60+120+240 s."""
    endpoint = setup.data["endpoints"]["local"]
    del endpoint["max_attempts"]
    endpoint["pause_after_failures"] = 1
    endpoint["base_url"] = _refusing_url()
    recordings = [make_wav(setup.inbox / f"talk{n}.wav", freq=300 + 60 * n) for n in range(3)]
    daemon = DaemonProcess(setup, "once")
    try:
        assert daemon.wait(timeout=20) == 3, daemon
    finally:
        daemon.kill()
    assert sorted(p.name for p in setup.inbox.iterdir()) == sorted(p.name for p in recordings)
    assert len(daemon.named("upload.started")) <= SHIPPED_MAX_ATTEMPTS + WORKERS - 1
