"""attack20: /healthz against a local user holding the metrics port's connections. At the
limit the newest connection was refused, so 16 idle sockets, opened again as each was cut
off, kept every probe refused (Kubernetes' liveness probe then kills the pod); the oldest
is closed for the newcomer now, and a probe that asks at once is answered."""

from __future__ import annotations

import contextlib
import signal
import socket
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, wait_for
from dropscribe.ops import serving

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow


def healthz(address: tuple[str, int]) -> bytes:
    """The raw answer to GET /healthz (empty when the server closed the socket unanswered)."""
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def flooded(address: tuple[str, int], count: int) -> Iterator[socket.socket]:
    """``count`` connections to ``address``, each asked for and left (not waited for)."""
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            sock.connect(address)
        yield sock


def gone(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (a look, not a wait)."""
    sock.settimeout(0)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@pytest.fixture
def metrics(setup) -> Iterator[tuple[DaemonProcess, tuple[str, int]]]:
    setup.data["metrics"] = {"port": 0}
    daemon = DaemonProcess(setup)
    try:
        yield daemon, daemon.metrics_address()
    finally:
        daemon.kill()


def test_healthz_answers_while_a_local_user_holds_every_connection_open(metrics):
    """MAX_CONNECTIONS idle sockets, each opened again once the server cuts it: five
    probes of /healthz in a row are each answered 200 ok (none was before: the newcomer
    was the one closed), and the daemon stops cleanly with no traceback."""
    daemon, address = metrics
    idlers: list[socket.socket] = []
    try:
        for _ in range(5):
            for cut in [s for s in idlers if gone(s)]:
                cut.close()
                idlers.remove(cut)
            idlers += [
                socket.create_connection(address, timeout=10)
                for _ in range(serving.MAX_CONNECTIONS - len(idlers))
            ]
            answer = healthz(address)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]
            assert answer.endswith(b"\r\n\r\nok\n")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        for idler in idlers:
            idler.close()
    assert not any("Traceback" in line for line in daemon.raw)


def test_a_flood_of_connections_leaves_healthz_answering(metrics):
    """2,000 connections opened and left (10k in spirit: the backlog and the limit are the
    same at any number): /healthz is answered 200 right after, and once they are closed."""
    daemon, address = metrics
    flood: list[socket.socket] = []
    try:
        flood += flooded(address, 2000)
        assert healthz(address).endswith(b"\r\n\r\nok\n")
    finally:
        for sock in flood:
            sock.close()
    wait_for(lambda: healthz(address).endswith(b"\r\n\r\nok\n"), 10, what="healthz after")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_a_probe_behind_a_flood_waits_in_the_kernels_queue_and_is_answered():
    """ci21: 2,000 connections made before the server serves, then a probe: every
    handshake completes in the kernel's queue (at a backlog of 64 most were retried for
    seconds, to land after the probe and push it out unread), so the probe connects, and
    it is answered once the server has worked through the flood before it."""
    server = serving.BoundedServer("127.0.0.1", 0, lambda _: serving.plain("200 OK", "ok\n"))
    flood: list[socket.socket] = []
    try:
        flood += flooded(server.address, 2000)
        with socket.create_connection(server.address, timeout=3) as probe:
            probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            server.start()
            probe.settimeout(10)
            answer = b"".join(iter(lambda: probe.recv(65536), b""))
        assert answer.endswith(b"\r\n\r\nok\n"), answer[:200]
    finally:
        for sock in flood:
            sock.close()
        server.stop()
