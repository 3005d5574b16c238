"""pool20: a reload reaches the worker processes (``processes: N``) whole: a key it brings
is blanked in their event lines as in the main process's (promise 4). A worker took the
reloaded endpoints but not the new key's blanking, and printed the key where a hook it ran
printed it. Through the real ``dropscribe`` process and the fake API."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from conftest import API_KEY, DaemonProcess, make_wav

pytestmark = pytest.mark.slow

FRESH = "sk-pool20-reloaded-0123456789abcdef"  # the key the reload brings


def test_a_key_a_reload_brings_is_blanked_in_the_worker_processes_lines(setup: Any) -> None:
    """processes: 2, the key file changed and SIGHUP: a hook (run by a worker process)
    that prints the new key has it logged as ``***``, nowhere in clear."""
    setup.data.update({"processes": 2, "workers": 2})
    key = setup.root / "api.key"
    key.write_text(API_KEY)
    local = setup.data["endpoints"]["local"]
    del local["api_key_env"]
    local["api_key_file"] = str(key)
    setup.data["defaults"]["hook"] = {"command": ["sh", "-c", f"cat {key} >&2; exit 3"]}
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        key.write_text(FRESH)
        setup.api.api_key = FRESH
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("hook.failed")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon
    finally:
        daemon.kill()
    assert daemon.named("file.done")
    assert daemon.named("hook.failed")[0]["stderr"] == "***"
    assert FRESH[:12] not in "".join(daemon.raw)
