"""The pieces that keep outsiders from exhausting the daemon: the bounded HTTP server,
the descriptor limit, the clients a reload replaces."""

from __future__ import annotations

import resource
import socket
import time
from typing import TYPE_CHECKING

import pytest

from conftest import wait_for
from dropscribe.ops import descriptors, serving
from dropscribe.ops.serving import Answer, BoundedServer, Request, plain
from dropscribe.transcribe.clients import Clients

if TYPE_CHECKING:
    from collections.abc import Iterator


def hello(request: Request) -> Answer:
    return plain("200 OK", f"hello {request.path}\n")


@pytest.fixture
def server(monkeypatch) -> Iterator[BoundedServer]:
    monkeypatch.setattr(serving, "REQUEST_SECONDS", 1.0)
    bounded = BoundedServer("127.0.0.1", 0, hello)
    bounded.start()
    yield bounded
    bounded.stop()


def connect(server: BoundedServer) -> socket.socket:
    return socket.create_connection(server.address[:2], timeout=5)


def ask(sock: socket.socket, head: bytes = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n") -> bytes:
    sock.sendall(head)
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (waiting at most 0.1 s to see it)."""
    sock.settimeout(0.1)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_request_is_answered_and_the_connection_closed(server):
    """A GET is answered with its length, and the connection closed after it."""
    with connect(server) as sock:
        answer = ask(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 9\r\n" in answer
    assert answer.endswith(b"\r\n\r\nhello /x\n")


def test_a_request_trickled_a_byte_at_a_time_is_cut_off(server):
    """A client that sends its request a byte at a time (slowloris) is cut off once the
    time for a whole request is over, however steadily it sends."""
    started = time.monotonic()
    with connect(server) as sock:
        for byte in b"GET / HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200:
            if closed_by_peer(sock):
                break
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
        else:
            pytest.fail("the trickling client was never cut off")
    assert time.monotonic() - started < 5


def test_connections_beyond_the_limit_close_the_oldest(server, monkeypatch):
    """Past MAX_CONNECTIONS open connections, a new one closes the oldest at once (attack20:
    refusing the newest let idlers shut every probe out); the server holds no more than
    the limit, and the newcomer is answered."""
    # idlers are not cut off for their silence while a loaded machine runs the test
    monkeypatch.setattr(serving, "REQUEST_SECONDS", 600.0)
    idlers = [connect(server) for _ in range(serving.MAX_CONNECTIONS)]
    try:
        wait_for(lambda: server.connections() == serving.MAX_CONNECTIONS, what="all accepted")
        with connect(server) as extra:
            wait_for(lambda: closed_by_peer(idlers[0]), 5, what="the oldest one closed")
            # the oldest is closed just before the newcomer is counted: the two in turn
            wait_for(lambda: server.connections() == serving.MAX_CONNECTIONS, 5, what="16 open")
            assert not any(closed_by_peer(idler) for idler in idlers[1:])
            assert ask(extra).endswith(b"hello /x\n")
    finally:
        for idler in idlers:
            idler.close()
    wait_for(lambda: server.connections() == 0, 5, what="the idlers' ends seen")


def test_an_oversized_or_malformed_request_is_refused(server):
    """A head past MAX_HEAD gets 431, a request line that is not HTTP gets 400, a POST 405."""
    with connect(server) as sock:
        assert ask(sock, b"GET /" + b"a" * serving.MAX_HEAD).startswith(b"HTTP/1.1 431")
    with connect(server) as sock:
        assert ask(sock, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400")
    with connect(server) as sock:
        assert ask(sock, b"POST / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one():
    """raise_limit lifts the soft RLIMIT_NOFILE to the hard limit."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, before[1]), before[1]))
    try:
        assert descriptors.raise_limit() == (before[1], before[1])
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (before[1], before[1])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


class FakeClient:
    def __init__(self, name: str) -> None:
        self.endpoint = type("Endpoint", (), {"name": name})()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_replaced_client_is_closed_when_its_last_request_ends():
    """A client replaced by a reload is closed at once when idle, or when the last
    request using it ends; new requests get the new client."""
    idle, busy = FakeClient("a"), FakeClient("b")
    clients = Clients({"a": idle, "b": busy})
    with clients.using("b") as using:
        new_a, new_b = FakeClient("a"), FakeClient("b")
        assert clients.replace({"a": new_a, "b": new_b}) == ["a", "b"]
        assert idle.closed
        assert not busy.closed
        assert not clients.is_current(using)
        with clients.using("b") as fresh:
            assert fresh is new_b
    assert busy.closed
    assert not new_b.closed
    assert clients.every() == [new_a, new_b]
