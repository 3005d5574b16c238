"""attack19: /metrics against a hostile Accept header. prometheus_client compares the
``version=`` of ``Accept: text/plain; version=x`` with a tuple and raises TypeError: the
server's one thread died with it, and /metrics and /healthz answered nobody after."""

from __future__ import annotations

import signal
import socket

import pytest

from conftest import DaemonProcess

pytestmark = pytest.mark.slow

HOSTILE = {  # Accept -> the Content-Type answered
    "text/plain; version=x": b"text/plain; version=0.0.4",
    "application/openmetrics-text; version=abc": b"text/plain; version=0.0.4",
    "application/openmetrics-text; version=1.0.0; escaping=\xff": b"openmetrics-text",
}


def ask(address: tuple[str, int], path: str, accept: str) -> bytes:
    """The raw answer to GET ``path`` with ``accept`` (its bytes as Latin-1)."""
    with socket.create_connection(address, timeout=10) as conn:
        head = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
        conn.sendall(head.encode("latin-1"))
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_hostile_accept_header_gets_an_answer_and_the_server_lives(setup):
    """Each hostile Accept gets metrics (200; plain text where its version is none), and /healthz and /metrics
    answer after them; no traceback, the daemon stops cleanly."""
    setup.data["metrics"] = {"port": 0}
    daemon = DaemonProcess(setup)
    try:
        address = daemon.metrics_address()
        for accept, kind in HOSTILE.items():
            answer = ask(address, "/metrics", accept)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), (accept, answer[:200])
            assert kind in answer.split(b"\r\n\r\n")[0]
            assert b"dropscribe_files" in answer
        assert ask(address, "/healthz", "*/*").endswith(b"\r\n\r\nok\n")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    assert not any("Traceback" in line for line in daemon.raw)


def test_a_handler_that_raises_gets_a_500_and_the_server_goes_on(events):
    """BoundedServer whose handler raises for one path: that request gets a 500 and
    metrics.answer_failed, and the next request is answered (the thread lives)."""
    from dropscribe.ops.serving import Answer, BoundedServer, Request, plain

    def handler(request: Request) -> Answer:
        if request.path == "/boom":
            raise TypeError("'>=' not supported between instances of 'str' and 'int'")
        return plain("200 OK", "fine\n")

    server = BoundedServer("127.0.0.1", 0, handler)
    server.start()
    try:
        assert ask(server.address, "/boom", "*/*").startswith(b"HTTP/1.1 500 ")
        assert ask(server.address, "/", "*/*").endswith(b"\r\n\r\nfine\n")
    finally:
        server.stop()
    (failed,) = [e for e in events if e["event"] == "metrics.answer_failed"]
    assert failed["error"].startswith("TypeError: '>=' not supported")
