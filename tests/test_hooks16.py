"""hooks16, the pure pieces: which environment proxy routes a URL (as httpx reads them),
that every http(s) proxy gets our transport, the bound named for a webhook's one timeout,
a lookup's message naming the proxy; and an HTTPS request through a CONNECT proxy, its
tunnel kept alive and cut."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import threading
from typing import Any, Self

import httpx
import pytest

from dropscribe.transcribe import cutoff, resolve
from dropscribe.transcribe.http import Client
from test_deadline14 import Hostile, _timed_out, ended, endpoint, tls  # noqa: F401 - tls: the fixture

VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
LIMITS = httpx.Limits(max_connections=1)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the machine's own in any test here."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_the_schemes_own_proxy_before_all_proxy(monkeypatch):
    """HTTP_PROXY routes an http URL before ALL_PROXY; ALL_PROXY routes the rest."""
    monkeypatch.setenv("HTTP_PROXY", "http://web.proxy:3128")
    monkeypatch.setenv("ALL_PROXY", "http://all.proxy:3128")
    web = cutoff._proxy("http://api.example/v1")
    other = cutoff._proxy("https://api.example/v1")
    assert web is not None
    assert (web.url, web.variable, web.host) == ("http://web.proxy:3128", "HTTP_PROXY", "web.proxy")
    assert other is not None
    assert (other.url, other.variable) == ("http://all.proxy:3128", "ALL_PROXY")


def test_a_proxy_without_a_scheme_is_plain_http(monkeypatch):
    """HTTPS_PROXY=host:port is an http:// proxy, as httpx takes it."""
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:8080")
    found = cutoff._proxy("https://api.example/v1")
    assert found is not None
    assert found.url == "http://proxy.corp:8080"


def test_no_proxy_and_other_schemes_are_not_routed(monkeypatch):
    """NO_PROXY's hosts go direct; an https URL does not take HTTP_PROXY."""
    monkeypatch.setenv("HTTP_PROXY", "http://web.proxy:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert cutoff._proxy("http://internal.example/hook") is None
    assert cutoff._proxy("https://api.example/v1") is None
    assert cutoff._proxy("http://api.example/v1") is not None


def test_every_proxy_gets_our_transport(monkeypatch):
    """An http(s) proxy's pool is ours (its name looked up under the deadline), and a
    SOCKS proxy's too (bounds17: it was left to httpx)."""
    monkeypatch.setenv("HTTP_PROXY", "http://web.proxy:3128")
    assert isinstance(cutoff.transport("http://api.example/v1", LIMITS), httpx.HTTPTransport)
    monkeypatch.setenv("HTTP_PROXY", "socks5://socks.proxy:1080")
    found = importlib.util.find_spec  # review16: socksio installed (else a SetupError)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: name == "socksio" or found(name))
    assert isinstance(cutoff.transport("http://api.example/v1", LIMITS), httpx.HTTPTransport)


def test_a_connect_timeout_as_long_as_the_deadline_is_named_timeout():
    """A webhook's one ``timeout`` bounds its lookup as the deadline, named ``timeout``."""
    with cutoff.deadline(2.0):
        seconds, bound = cutoff._bound(2.0)
    assert seconds <= 2.0
    assert bound == "2 s (timeout)"
    with cutoff.deadline(5.0):
        assert cutoff._bound(1.0) == (1.0, "1 s (connect_timeout)")


def test_a_proxys_lookup_that_never_answers_names_the_proxy():
    """The proxy's name is looked up through the resolver under the bound, and the error
    says it is the proxy's, with its variable."""
    release = threading.Event()

    def stuck(*args: Any, **kwargs: Any) -> list[Any]:
        release.wait(30)
        return []

    proxy = cutoff.Proxy("http://proxy.stalls.test:3128", "HTTPS_PROXY")
    backend = cutoff._Backend(resolve.Resolver(stuck), proxy=proxy)
    try:
        with pytest.raises(resolve.Unresolved) as caught:
            backend.connect_tcp("proxy.stalls.test", 3128, timeout=0.2)
    finally:
        release.set()
    assert str(caught.value) == (
        "the proxy's name (HTTPS_PROXY) 'proxy.stalls.test' did not resolve within 0.2 s"
        " (connect_timeout)"
    )


class Tunnel:
    """A CONNECT proxy on 127.0.0.1: each tunnel (counted) piped to 127.0.0.1 at the port
    asked for, whatever the name."""

    def __init__(self) -> None:
        self.tunnels = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="hooks16-tunnel", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._listener.accept()
                self.tunnels += 1
                self._start(self._open, conn)

    def _open(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            piece = conn.recv(4096)
            if not piece:
                conn.close()
                return
            head += piece
        port = int(head.split()[1].rsplit(b":", 1)[1])
        with conn, socket.create_connection(("127.0.0.1", port)) as upstream:
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
            back.start()
            self._pipe(conn, upstream)
            back.join(10)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while piece := source.recv(65536):
                sink.sendall(piece)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def test_through_a_connect_proxy_an_https_request_is_kept_alive_and_cut(
    tls: Hostile,  # noqa: F811 - the fixture imported by name
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY's tunnel (TLS started over our connection) answers, is taken again for
    the next request, and that request, trickled, is still cut at its timeout."""
    tls.modes.extend([None, "trickle_head"])
    with Tunnel() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = Client(endpoint(tls.base_url))
        try:
            assert client.catalogue() == {"object": "list", "data": []}
            _, error = ended(tls, client.catalogue)
        finally:
            client.close()
    assert proxy.tunnels == 1
    assert tls.connections == 1
    _timed_out(error, f"{tls.base_url}/models")
