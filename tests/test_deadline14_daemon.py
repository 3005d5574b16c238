"""Through the real ``dropscribe`` process: an upload whose server trickles or stalls is
cut at the endpoint's timeout, the file is tried again with the reason recorded, and the
daemon goes on to finish it and the next file."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import DaemonProcess, make_wav
from test_deadline14 import Hostile

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Setup

TIMEOUT = 2.0


@pytest.fixture
def hostile(setup: Setup) -> Iterator[Hostile]:
    """A hostile front for the fake API: uploads take its modes, the rest pass through."""
    with Hostile(relay=httpx.URL(setup.api.base_url).port) as server:
        server.target = "/audio/"
        setup.data["endpoints"]["local"].update(
            {"base_url": server.base_url, "timeout": TIMEOUT, "max_attempts": 3}
        )
        yield server


@pytest.mark.parametrize("mode", ["trickle_head", "endless_headers", "trickle_body"])
def test_a_hostile_upload_is_retried_and_the_daemon_goes_on(setup, hostile, mode):
    """The cut upload is recorded with its reason and retried; it and the next file finish."""
    hostile.modes.append(mode)
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("file.done", timeout=TIMEOUT * 3 + 20)
        make_wav(setup.inbox / "b.wav", seconds=0.6)
        daemon.wait_event("file.done", count=2)
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    (failed,) = daemon.named("upload.failed")
    assert hostile.base_url in failed["error"]
    assert f"within {TIMEOUT:g} s (timeout)" in failed["error"]
    assert failed["retryable"] is True
    assert len(daemon.named("upload.retrying")) == 1
    assert (setup.inbox / "a.txt").exists()
    assert (setup.inbox / "b.txt").exists()
    assert hostile.served.count(mode) == 1
