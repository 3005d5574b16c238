"""flake22, through the real ``dropscribe`` process: a webhook's timeout bounds the wait
for the network, not the daemon's own work before the request (the client's TLS
contexts, each a CA bundle read). A loaded machine (load 16 on 2 cores) took over 1 s of
hooks16's 2-s timeout making them, and the hook failed unsent. Here a CA bundle that takes
seconds to read (SSL_CERT_FILE, which httpx honours) stands in for that load."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, patience
from test_hooks import Receiver
from test_hooks16_daemon import hook_ended

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow

# Copies of the machine's CA bundle in the slow one: about 3 s to read here at load 2
# (80 ms a copy), where the hook has 1 s (patience: 3 s) and reads it twice.
COPIES = 40
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def slow_bundle(tmp_path: Path) -> Path:
    """A CA bundle of the machine's certificates, many times over."""
    pytest.importorskip("certifi")
    try:
        with open(BUNDLE, "rb") as source:
            one = source.read()
    except OSError:
        pytest.skip(f"no {BUNDLE} here")
    bundle = tmp_path / "slow-bundle.pem"
    bundle.write_bytes(one * COPIES)
    return bundle


def test_a_webhooks_timeout_is_not_spent_making_its_client(setup: Setup, slow_bundle: Path) -> None:
    """A webhook whose client takes longer to make than its timeout (its TLS contexts) is
    still sent, and the hook runs: the deadline starts with the request."""
    with Receiver() as receiver:
        setup.data["defaults"]["hook"] = {"webhook": receiver.url, "timeout": patience(1)}
        setup.data["workers"] = 1
        daemon = DaemonProcess(setup, env={"SSL_CERT_FILE": str(slow_bundle)})
        assert hook_ended(setup, daemon, timeout=60) == 0, daemon
    assert not daemon.named("hook.failed"), daemon.named("hook.failed")
    assert [body["outcome"] for body in receiver.bodies] == ["done"]
