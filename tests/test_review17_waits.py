"""review17, through the real ``dropscribe`` process and fake API: a file asked by a 429
to wait an hour (Retry-After) and the daemon stopped; the endpoint's key is replaced
(another account, whose limits are its own) before the restart. The restarted daemon
does not honour the wait the old key was given: it sends the file at once and says so
(``file.wait_dropped``), as for another URL or budget (bounds17's fingerprint)."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav
from dropscribe.vocab import waits
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings
from test_until16 import LONG, asks_for_a_pause, waited

KEY = "DROPSCRIBE_TEST_KEY"  # the variable the setup's endpoint reads its key from


@pytest.fixture
def site(setup: Any) -> Any:
    """One worker, rescans an hour apart."""
    setup.data["rescan_seconds"] = 3600
    setup.data["workers"] = 1
    return setup


def test_a_wait_for_an_old_keys_rate_limit_is_dropped_when_the_key_changed(site):
    """The 429's hour-long wait, then another key (the fake API now takes only it): the
    restarted daemon sends the file at once (file.wait_dropped, file.done), not an hour on."""
    asks_for_a_pause(site, LONG)
    held = make_wav(site.inbox / "held.wav", seconds=0.5)
    waited(site, held)
    site.api.api_key = "sk-another-account"
    proc = DaemonProcess(site, env={KEY: "sk-another-account"})
    try:
        proc.wait_output(
            lambda: bool(proc.named("file.done") or proc.named("file.deferred")),
            timeout=30,
            what="the file sent or deferred",
        )
        assert not proc.named("file.deferred"), "the old key's wait was honoured"
        [dropped] = proc.named("file.wait_dropped")
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert dropped["path"] == str(held)
    assert [e["path"] for e in proc.named("file.done")] == [str(held)]
    assert len(site.api.uploads) == 2


def test_the_fingerprint_follows_an_endpoints_kind_and_key():
    """Pure: another kind (other list prices) or another key is another fingerprint; the
    fingerprint does not hold the key as it is."""
    settings = FolderSettings(endpoint="e", model="whisper-1")

    def of(**endpoint: Any) -> str:
        made = Endpoint(name="e", base_url="http://api.example/v1", **endpoint)
        return waits.fingerprint(settings, {"e": made}.get)

    base = of(kind="openai", api_key="sk-one")
    assert base == of(kind="openai", api_key="sk-one")
    assert len({base, of(kind="groq", api_key="sk-one"), of(kind="openai", api_key="sk-two")}) == 3
    assert "sk-one" not in base
