"""A proxy that cannot be reached is named in the error, not only the endpoint behind it
(attack16's note: "cannot connect to <endpoint>: connection refused" sent people to
check a server that was fine). Through the real ``dropscribe`` process."""

from __future__ import annotations

import signal
import socket
from typing import TYPE_CHECKING

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from conftest import Setup

PASSWORD = "s3cr3t-proxy-word"  # a test value, to be found nowhere


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_upload_through_a_proxy_that_refuses_connections_names_the_proxy(setup: Setup):
    """HTTP_PROXY names a port on 127.0.0.1 nothing listens on: upload.failed says it
    could not connect to the endpoint's URL through the proxy HTTP_PROXY names (its host),
    connection refused; the password is in no line, and nothing reached the server."""
    endpoint = setup.data["endpoints"]["local"]
    endpoint.update({"max_attempts": 1})
    proxy = f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}"
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    daemon = DaemonProcess(setup, env=env)
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("upload.failed")
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    error = daemon.named("upload.failed")[0]["error"]
    assert endpoint["base_url"] in error
    assert "through the proxy HTTP_PROXY names (127.0.0.1): connection refused" in error
    assert PASSWORD not in "".join(daemon.raw)
    assert setup.api.connections == 0
