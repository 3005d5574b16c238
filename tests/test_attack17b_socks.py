"""attack17b: a hostile SOCKS5 proxy on 127.0.0.1 (ALL_PROXY), through the real
``dropscribe`` process: replies that are malformed, huge, or never come."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from typing import TYPE_CHECKING, Self

import pytest

from conftest import DaemonProcess, make_wav, patience
from test_bounds17_socks import only_all_proxy

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Setup


class Hostile:
    """A server on 127.0.0.1 that reads a client's first bytes and then does ``act`` with
    its socket; every connection's thread joined on exit."""

    def __init__(self, act: Callable[[socket.socket, threading.Event], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"socks5://127.0.0.1:{self.listener.getsockname()[1]}"
        self.act = act
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept)

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                thread = threading.Thread(target=self._serve, args=(client,))
                self.threads.append(thread)
                thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.recv(64)  # the greeting
            self.act(client, self.stop)

    def __enter__(self) -> Self:
        self.accepting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.accepting.join()
        for thread in self.threads:
            thread.join()


def _garbage(client: socket.socket, _stop: threading.Event) -> None:
    client.sendall(b"\x05")  # half a method reply, then closed


def _closed(_client: socket.socket, _stop: threading.Event) -> None:
    """The connection closed after the greeting, without a word."""


def _stalled(_client: socket.socket, stop: threading.Event) -> None:
    """No reply to the greeting, ever (until the test ends)."""
    stop.wait()


def _hostile_proxy(
    setup: Setup, act: Callable[[socket.socket, threading.Event], None]
) -> DaemonProcess:
    """The daemon behind ``act``'s proxy, stopped after its upload failed twice and the
    endpoint paused (SIGTERM, within the grace)."""
    with Hostile(act) as hostile:
        daemon = DaemonProcess(setup, env=only_all_proxy(hostile.url))
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            daemon.wait_output(
                lambda: any(
                    e["event"] in {"endpoint.paused", "job.crashed", "file.failed"}
                    for e in daemon.events
                ),
                30,
                "the upload's end or the endpoint's pause",
            )
        finally:
            daemon.signal(signal.SIGTERM)
            assert daemon.wait() == 0
    return daemon


@pytest.mark.parametrize("act", [_garbage, _closed], ids=["half-reply", "closed"])
def test_a_socks_proxys_malformed_reply_is_the_proxys_outage_not_a_crash(
    setup: Setup, act: Callable[[socket.socket, threading.Event], None]
) -> None:
    """A SOCKS5 proxy that answers the greeting with half a reply, or closes: the upload
    fails naming ALL_PROXY and the proxy's reply, the endpoint pauses and the recording
    stays in its inbox (no job.crashed, no quarantine); the radar's thread lives."""
    daemon = _hostile_proxy(setup, act)
    assert not daemon.named("job.crashed")
    assert not daemon.named("thread.crashed")
    assert not daemon.named("file.failed")
    failed = daemon.named("upload.failed")
    assert failed
    assert all("ALL_PROXY" in e["error"] for e in failed)
    assert all("SOCKS proxy's reply" in e["error"] for e in failed)
    assert daemon.named("endpoint.paused")
    assert (setup.inbox / "a.wav").is_file()
    assert not (setup.inbox / "failed").exists()


def test_a_socks_proxy_that_stalls_mid_handshake_is_cut_at_the_timeout(setup: Setup) -> None:
    """A SOCKS5 proxy that never answers the greeting: the upload ends at the endpoint's
    timeout (the deadline cuts the handshake) as a timeout, not a crash: no job.crashed,
    no thread.crashed, the file failed for no answer within 3 s after its one attempt."""
    setup.data["endpoints"]["local"].update(timeout=3, max_attempts=1)
    daemon = _hostile_proxy(setup, _stalled)
    assert not daemon.named("job.crashed")
    assert not daemon.named("thread.crashed")
    (failed,) = daemon.named("file.failed")
    assert "within 3 s (timeout)" in failed["error"]
    (upload,) = daemon.named("upload.failed")
    assert upload["ms"] < patience(3) * 1000 + 2000
