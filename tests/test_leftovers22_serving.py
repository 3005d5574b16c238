"""leftovers22: the metrics server read a request's head up to its first CRLF CRLF only,
so a request whose lines end in a bare LF (``printf 'GET /healthz HTTP/1.0\\n\\n' | nc``,
many scripts) waited out the 5-s deadline and was closed unanswered. A head ends at its
first empty line now, each line ended by CRLF or LF as http.server reads them; the
limits (head size, deadline) are the same."""

from __future__ import annotations

import signal
import socket
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, patience

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Setup
    from dropscribe.ops.serving import Answer, BoundedServer, Request


def ask(address: tuple[str, int], head: bytes) -> bytes:
    """Everything the server sends for ``head`` before it closes the connection."""
    with socket.create_connection(address, timeout=patience(10)) as conn:
        conn.sendall(head)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def echoing() -> Iterator[BoundedServer]:
    """A BoundedServer answering each request with its path and headers, one a line."""
    from dropscribe.ops.serving import BoundedServer, plain

    def handler(request: Request) -> Answer:
        lines = [request.path, *(f"{k}={v}" for k, v in sorted(request.headers.items()))]
        return plain("200 OK", "\n".join(lines) + "\n")

    server = BoundedServer("127.0.0.1", 0, handler)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /where HTTP/1.0\nHost: x\nAccept: */*\n\n",
        b"GET /where HTTP/1.0\r\nHost: x\nAccept: */*\r\n\n",
        b"GET /where HTTP/1.0\nHost: x\r\nAccept: */*\n\r\n",
    ],
    ids=["lf", "mixed", "lf-then-crlf"],
)
def test_a_head_with_bare_lf_line_ends_is_answered_with_its_headers(
    echoing: BoundedServer, head: bytes
) -> None:
    """Bare LF (alone or mixed with CRLF) ends lines and the head: a 200 naming the path
    and both headers, no stray CR in their values (before: closed unanswered at 5 s)."""
    answer = ask(echoing.address, head)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    assert answer.endswith(b"\r\n\r\n/where\naccept=*/*\nhost=x\n"), answer


def test_a_bare_lf_head_past_the_limit_is_still_refused(echoing: BoundedServer) -> None:
    """LF-ended headers past MAX_HEAD with no empty line yet get the 431, as CRLF ones
    do: the limit is not loosened (a guard: this passed before too). Only the bytes the
    server reads are sent (more, unread, would reset the connection before its answer)."""
    from dropscribe.ops.serving import MAX_HEAD

    filler = b"".join(b"X-%d: %s\n" % (i, b"a" * 60) for i in range(MAX_HEAD // 60))
    answer = ask(echoing.address, (b"GET / HTTP/1.0\n" + filler)[: MAX_HEAD + 1])
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]


@pytest.mark.slow
def test_healthz_answers_a_bare_lf_request_from_the_daemon(setup: Setup) -> None:
    """The daemon's /healthz, asked as ``nc`` asks (``GET /healthz HTTP/1.0\\n\\n``),
    answers 200 ok; /metrics too; the daemon stops cleanly."""
    setup.data["metrics"] = {"port": 0}
    daemon = DaemonProcess(setup)
    try:
        address = daemon.metrics_address()
        assert ask(address, b"GET /healthz HTTP/1.0\n\n").endswith(b"\r\n\r\nok\n")
        metrics = ask(address, b"GET /metrics HTTP/1.0\nAccept: text/plain\n\n")
        assert metrics.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"dropscribe_files" in metrics
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
