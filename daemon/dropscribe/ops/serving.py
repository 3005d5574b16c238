"""A small HTTP server whose cost nobody who can connect to it can raise.

Anyone on the host may connect to the metrics port, so what a connection costs is
fixed: at most ``MAX_CONNECTIONS`` sockets are open at once (one more is accepted and
the oldest open one closed for it, so the kernel's backlog never fills), a request
must arrive whole, its head at most ``MAX_HEAD`` bytes, within ``REQUEST_SECONDS`` of
connecting (a client that sends a byte a second is cut off like one that sends
nothing), and its answer must be taken within ``ANSWER_SECONDS``. One thread serves
every socket through epoll; no connection gets a thread of its own, and the
descriptors the daemon needs for its uploads, ledger and watches are never the server's to take.

attack20: the one refused at the limit was the newest, so 16 idle sockets, opened again
as each was cut off, kept every probe of /healthz refused (Kubernetes' liveness probe
then killed the pod every minute). The oldest goes instead: a client that sends its
request as it connects (every probe, every scraper) is answered before 16 newer
connections can push it out, since a turn reads what came before it accepts more, and
accepts fewer than ``MAX_CONNECTIONS``.
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import structlog

if TYPE_CHECKING:
    from collections.abc import Callable

log = structlog.get_logger("dropscribe")

MAX_CONNECTIONS = 16
MAX_HEAD = 8192  # bytes of request line and headers
REQUEST_SECONDS = 5.0
ANSWER_SECONDS = 10.0
# Connections accepted in one turn: fewer than the limit, so that none accepted in a turn
# is closed for a newer one before it has been read.
BURST = MAX_CONNECTIONS // 2
TICK = 0.5  # longest the thread waits before it looks at the deadlines and the stop flag
# ci21: the kernel's queue of connections not yet accepted: as long as the system allows
# (net.core.somaxconn, 4096 by default). At 64, a flood of 2,000 connections had most of
# them retrying their handshakes for seconds, to land after a probe that had come in
# meanwhile and push it out unread; queued, they are accepted (and closed) before it.
BACKLOG = socket.SOMAXCONN
# The limit's own share of descriptors: the connections, the listening socket, epoll.
DESCRIPTORS = MAX_CONNECTIONS + 2
# leftovers22: a head ends at its first empty line, its lines ended by CRLF or a bare LF
# as http.server reads them (``nc`` and many scripts send LF: they waited out the deadline)
HEAD_END = re.compile(rb"\r?\n\r?\n")


class Request(NamedTuple):
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names in lower case


class Answer(NamedTuple):
    status: str  # "200 OK"
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    out: memoryview | None = None  # the answer, while it is being written


def parse(head: bytes) -> Request | None:
    """The request in a complete head (request line and headers, each line ended by CRLF
    or LF); None if malformed."""
    lines = [line.removesuffix("\r") for line in head.decode("latin-1").split("\n")]
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    path, _, query = parts[1].partition("?")
    return Request(parts[0], path, query, headers)


def render(answer: Answer, *, head_only: bool = False) -> bytes:
    """An answer's bytes, on a connection that closes after it."""
    lines = [f"HTTP/1.1 {answer.status}"]
    lines += [f"{name}: {value}" for name, value in answer.headers]
    lines += [f"Content-Length: {len(answer.body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (b"" if head_only else answer.body)


def plain(status: str, text: str) -> Answer:
    return Answer(status, [("Content-Type", "text/plain; charset=utf-8")], text.encode())


class BoundedServer:
    """Serves ``handler``'s answers on (host, port) from one thread until ``stop()``."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[Request], Answer],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Binds at once: raises OSError when it cannot."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(BACKLOG)
        except OSError:
            self._listener.close()
            raise
        self._listener.settimeout(0)
        self.address = self._listener.getsockname()
        self._handler = handler
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._open: dict[socket.socket, _Connection] = {}
        self._stopping = threading.Event()
        self._paused_until = 0.0  # out of descriptors: accept nothing until then
        self._thread = threading.Thread(target=self._serve, name="dropscribe-metrics")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        for conn in list(self._open.values()):
            self._close(conn)
        self._selector.close()
        self._listener.close()

    def connections(self) -> int:
        return len(self._open)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            now = self._clock()
            self._listening(now)
            knocked = False
            for key, events in self._selector.select(TICK):
                if key.fileobj is self._listener:
                    knocked = True  # accepted once the open ones have had their turn
                elif events & selectors.EVENT_READ:
                    self._read(self._open[key.fileobj])  # type: ignore[index]
                else:
                    self._write(self._open[key.fileobj])  # type: ignore[index]
            if knocked:
                self._accept(now)
            now = self._clock()
            for conn in [c for c in self._open.values() if now >= c.deadline]:
                self._close(conn)  # too slow: idle, trickling, or not reading its answer

    def _listening(self, now: float) -> None:
        """Listen again once a pause for want of descriptors is over."""
        if self._paused_until and now >= self._paused_until:
            self._paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ)

    def _accept(self, now: float) -> None:
        for _ in range(BURST):  # a burst, then the open ones get a turn
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}:
                    self._selector.unregister(self._listener)
                    self._paused_until = now + 1.0
                return  # ECONNABORTED and the like: the client went away
            if len(self._open) >= MAX_CONNECTIONS:
                self._close(next(iter(self._open.values())))  # the oldest: dicts keep order
            sock.settimeout(0)
            conn = _Connection(sock, now + REQUEST_SECONDS)
            self._open[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(MAX_HEAD + 1 - len(conn.head))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        conn.head += data
        end = HEAD_END.search(conn.head, max(0, len(conn.head) - len(data) - 3))
        if end is None:
            if len(conn.head) > MAX_HEAD:
                self._answer(conn, plain("431 Request Header Fields Too Large", "too large\n"))
            return
        request = parse(bytes(conn.head[: end.start()]))
        if request is None:
            self._answer(conn, plain("400 Bad Request", "bad request\n"))
        elif request.method not in {"GET", "HEAD"}:
            self._answer(conn, plain("405 Method Not Allowed", "GET only\n"))
        else:
            self._answer(conn, self._answered(request), head_only=request.method == "HEAD")

    def _answered(self, request: Request) -> Answer:
        """The handler's answer; a 500 when it raises (attack19: a hostile Accept header
        raised in prometheus_client, and the one thread serving every socket died)."""
        try:
            return self._handler(request)
        except Exception as exc:
            log.error(
                "metrics.answer_failed",
                error=f"{exc.__class__.__name__}: {exc}",
                path=request.path,
                action="a bug in dropscribe: report it with this line; the server goes on",
            )
            return plain("500 Internal Server Error", "failed\n")

    def _answer(self, conn: _Connection, answer: Answer, *, head_only: bool = False) -> None:
        conn.out = memoryview(render(answer, head_only=head_only))
        conn.deadline = self._clock() + ANSWER_SECONDS
        self._selector.modify(conn.sock, selectors.EVENT_WRITE)
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        assert conn.out is not None  # registered for writing only with an answer
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
            self._close(conn)

    def _close(self, conn: _Connection) -> None:
        if self._open.pop(conn.sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()
