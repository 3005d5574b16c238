"""No hostile server holds a request of ours past its timeout: the uploads, GET /models
(the model radar), the chat steps and the webhook, each against a real socket server on
127.0.0.1 that trickles, stalls or never ends its headers; and a 429's Retry-After,
however large or odd, is waited on at most MAX_RETRY_AFTER."""

from __future__ import annotations

import collections
import contextlib
import ssl
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any, Self

import pytest

from conftest import API_KEY, make_wav, named, patience
from dropscribe.errors import PermanentError, RetryableError, TranscriptionError
from dropscribe.outputs import hooks
from dropscribe.steps.chat import ChatClient
from dropscribe.transcribe.backoff import MAX_RETRY_AFTER
from dropscribe.transcribe.http import Client
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings, HookModel

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator
    from pathlib import Path

TIMEOUT = 1.0  # the endpoint's and the webhook's
GAP = 0.1  # seconds between the trickle's bytes: well inside the per-read timeout
SETTINGS = FolderSettings(endpoint="e", model="whisper-1")
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
HOSTILE = ("trickle_head", "endless_headers", "trickle_body", "stall", "huge_length")


class Hostile:
    """A raw HTTP/1.1 server on 127.0.0.1: each request whose path has ``target`` in it
    takes the next of ``modes`` (``keep`` once they are spent); None answers honestly,
    keeping the connection: from ``answers``, or passed on to ``relay`` (a port)."""

    def __init__(self, tls: ssl.SSLContext | None = None, relay: int | None = None) -> None:
        self.modes: collections.deque[str | None] = collections.deque()
        self.keep: str | None = None
        self.target = ""
        self.relay = relay
        self.answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}  # path part -> reply
        self.closing = threading.Event()
        self.served: list[str | None] = []
        self.connections = 0
        self._tls = tls
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None

    @property
    def base_url(self) -> str:
        assert self._listener is not None
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}/v1"

    def __enter__(self) -> Self:
        import socket

        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # the accept loop looks at ``closing`` this often
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        for thread in list(self._threads):
            thread.join(patience(5))
        assert self._listener is not None
        self._listener.close()

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="hostile-server")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self.closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._start(self._serve, conn)

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.suppress(OSError))
            conn = stack.enter_context(raw)
            conn.settimeout(None)
            if self._tls is not None:
                conn = stack.enter_context(self._tls.wrap_socket(conn, server_side=True))
            reader = stack.enter_context(conn.makefile("rb"))
            while not self.closing.is_set():
                path, raw = _request(reader)
                if path is None:
                    return
                mode = None
                if self.target in path:
                    mode = self.modes.popleft() if self.modes else self.keep
                self.served.append(mode)
                if mode is None:
                    conn.sendall(self._relayed(raw) if self.relay else self._honest(path))
                    continue
                getattr(self, f"_{mode}")(conn)
                return

    def _relayed(self, raw: bytes) -> bytes:
        """The relay's whole answer to ``raw`` (asked to close once it has answered)."""
        import socket

        start, _, rest = raw.partition(b"\r\n")
        with socket.create_connection(("127.0.0.1", self.relay or 0)) as upstream:
            upstream.sendall(start + b"\r\nConnection: close\r\n" + rest)
            pieces = []
            while piece := upstream.recv(1 << 16):
                pieces.append(piece)
        return b"".join(pieces)

    def _honest(self, path: str) -> bytes:
        status, body, headers = next(
            (reply for part, reply in self.answers.items() if part in path),
            (200, b'{"object": "list", "data": []}', {}),
        )
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        return (
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n".encode()
            + extra
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def _trickle(self, conn: socket.socket, data: Iterator[bytes]) -> None:
        """Each piece of ``data`` GAP after the last, until the client goes or we close."""
        for piece in data:
            conn.sendall(piece)
            if self.closing.wait(GAP):
                return

    def _trickle_head(self, conn: socket.socket) -> None:
        """The status line and headers a byte at a time, and the headers never end."""

        def head() -> Iterator[bytes]:
            for n in range(10**9):
                line = HEAD if n == 0 else f"X-Pad-{n}: y\r\n".encode()
                yield from (line[i : i + 1] for i in range(len(line)))

        self._trickle(conn, head())

    def _endless_headers(self, conn: socket.socket) -> None:
        """Whole header lines, one at a time, for ever."""
        self._trickle(conn, (HEAD if n == 0 else b"X-Pad: y\r\n" for n in range(10**9)))

    def _trickle_body(self, conn: socket.socket) -> None:
        """Complete headers, then a body of a megabyte a byte at a time."""
        conn.sendall(HEAD + b"Content-Length: 1000000\r\n\r\n")
        self._trickle(conn, (b"{" if n == 0 else b" " for n in range(10**6)))

    def _stall(self, conn: socket.socket) -> None:
        """Complete headers, then nothing."""
        conn.sendall(HEAD + b"Content-Length: 100\r\n\r\n")
        self.closing.wait()

    def _huge_length(self, conn: socket.socket) -> None:
        """Headers declaring a body of a petabyte, then nothing."""
        conn.sendall(HEAD + b"Content-Length: 1000000000000000\r\n\r\n")
        self.closing.wait()


def _request(reader: Any) -> tuple[str | None, bytes]:
    """Read one request (head and body): its path (None when the client has gone) and
    its bytes (a chunked body as it came)."""
    start = reader.readline()
    if not start:
        return None, b""
    raw = [start]
    length, chunked = 0, False
    while (line := reader.readline()) not in {b"\r\n", b""}:
        raw.append(line)
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        chunked |= name.strip().lower() == "transfer-encoding" and "chunked" in value
    raw.append(b"\r\n")
    if chunked:
        while True:
            line = reader.readline()
            raw.append(line)
            size = int(line.split(b";")[0], 16)
            raw.append(reader.read(size + 2))
            if size == 0:
                break
    else:
        raw.append(reader.read(length))
    return str(start.split()[1].decode()), b"".join(raw)


def endpoint(base_url: str) -> Endpoint:
    return Endpoint(
        name="e",
        base_url=base_url,
        timeout=TIMEOUT,
        connect_timeout=2.0,
        max_concurrency=2,
        max_attempts=1,
        backoff_max=1.0,
        api_key=API_KEY,
    )


def ended(server: Hostile, call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """``call``'s result or exception; fails if it has not ended by three timeouts (the
    server is then told to stop, which ends the call)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = call()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target, name="deadline14-call")
    thread.start()
    thread.join(patience(TIMEOUT * 3))
    alive = thread.is_alive()
    server.closing.set()
    thread.join(patience(10))
    assert not alive, f"still running after {patience(TIMEOUT * 3):g} s"
    return out.get("result"), out.get("error")


@pytest.fixture
def server() -> Iterator[Hostile]:
    with Hostile() as hostile:
        yield hostile


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "a.wav")


def _timed_out(error: BaseException | None, url: str) -> None:
    """Our error, naming the URL and the timeout (a declared petabyte: the size cap)."""
    assert isinstance(error, TranscriptionError), error
    assert url in error.message
    if isinstance(error, PermanentError):
        assert "max_answer_bytes" in error.message or "list of models" in error.message
    else:
        assert isinstance(error, RetryableError)
        assert f"within {TIMEOUT:g} s" in error.message


@pytest.mark.parametrize("mode", HOSTILE)
def test_an_upload_ends_within_its_timeout(server, wav, mode):
    """An upload ends with our error naming the URL and timeout, whatever the server does."""
    server.modes.append(mode)
    client = Client(endpoint(server.base_url))
    try:
        _, error = ended(server, lambda: client.transcribe(wav, SETTINGS))
    finally:
        client.close()
    _timed_out(error, server.base_url)


@pytest.mark.parametrize("mode", HOSTILE)
def test_the_model_radar_look_ends_within_its_timeout(server, mode):
    """GET /models (radar, lookout) ends with our error naming the URL and the timeout."""
    server.modes.append(mode)
    client = Client(endpoint(server.base_url))
    try:
        _, error = ended(server, client.catalogue)
    finally:
        client.close()
    _timed_out(error, f"{server.base_url}/models")


@pytest.mark.parametrize("mode", HOSTILE)
def test_a_chat_step_ends_within_its_timeout(server, mode):
    """A chat completion ends with our error naming the URL and the timeout."""
    server.modes.append(mode)
    client = ChatClient(endpoint(server.base_url))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        _, error = ended(server, lambda: client.complete(body))
    finally:
        client.close()
    _timed_out(error, f"{server.base_url}/chat/completions")


@pytest.mark.parametrize("mode", HOSTILE)
def test_a_webhook_ends_within_its_timeout(server, events, mode):
    """The webhook's POST ends by its timeout; a cut one is logged as a timeout."""
    server.modes.append(mode)
    hook = HookModel(webhook=f"{server.base_url}/hook", timeout=TIMEOUT)
    ended(server, lambda: hooks.run(hook, {"outcome": "done"}))
    if mode in {"trickle_head", "endless_headers"}:  # no status came: the deadline cut it
        (failed,) = named(events, "hook.failed")
        assert failed["error"] == "timeout"
        assert failed["timeout"] == TIMEOUT


def test_a_kept_alive_connection_is_cut_too(server):
    """A second request on a kept-alive connection whose headers trickle still ends."""
    server.modes.extend([None, "trickle_head"])
    client = Client(endpoint(server.base_url))
    try:
        assert client.catalogue() == {"object": "list", "data": []}
        _, error = ended(server, client.catalogue)
    finally:
        client.close()
    assert server.connections == 1
    _timed_out(error, f"{server.base_url}/models")


def test_through_an_environment_proxy_each_request_is_cut(server, monkeypatch):
    """HTTP_PROXY is still honoured, its connection kept alive (hooks16), and cut."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    server.modes.extend([None, "trickle_head"])
    unreachable = "http://192.0.2.1:9/v1"  # TEST-NET-1: only the proxy can answer for it
    client = Client(endpoint(unreachable))
    try:
        assert client.catalogue() == {"object": "list", "data": []}
        _, error = ended(server, client.catalogue)
    finally:
        client.close()
    assert server.connections == 1
    _timed_out(error, f"{unreachable}/models")


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    """A hostile server over TLS whose self-signed certificate the client trusts."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with Hostile(tls=context) as hostile:
        yield hostile


def test_over_tls_an_upload_is_cut(tls, wav):
    """Over HTTPS (TLS replaces the socket first connected) an upload still ends."""
    tls.keep = "trickle_head"
    client = Client(endpoint(tls.base_url))
    try:
        _, error = ended(tls, lambda: client.transcribe(wav, SETTINGS))
    finally:
        client.close()
    _timed_out(error, tls.base_url)


def test_over_tls_a_chat_step_is_cut(tls):
    """Over HTTPS (TLS replaces the socket first connected) a chat completion still ends."""
    tls.keep = "trickle_head"
    client = ChatClient(endpoint(tls.base_url))
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        _, error = ended(tls, lambda: client.complete(body))
    finally:
        client.close()
    _timed_out(error, tls.base_url)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Retry-After", "999999999"),
        ("Retry-After", "1e400"),
        ("Retry-After", "-5"),
        ("Retry-After", "soon, honest"),
        ("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("retry-after-ms", "99999999999999"),
    ],
)
def test_a_429_asks_for_no_longer_than_the_cap(server, wav, header, value):
    """Over a real socket, a 429's wait is at most MAX_RETRY_AFTER, never negative."""
    body = b'{"error": {"message": "slow down", "type": "rate_limit", "code": null}}'
    server.answers["audio"] = (429, body, {header: value})
    client = Client(endpoint(server.base_url))
    started = time.monotonic()
    try:
        with pytest.raises(RetryableError) as info:
            client.transcribe(wav, SETTINGS)
    finally:
        client.close()
    assert time.monotonic() - started < patience(TIMEOUT * 3)
    assert info.value.status == 429
    wait = info.value.retry_after
    assert wait is None or 0 <= wait <= MAX_RETRY_AFTER


def test_a_deadline_after_the_answer_cuts_nothing():
    """Once released (the answer in), the deadline leaves the socket, kept alive, alone."""
    import socket

    from dropscribe.transcribe.cutoff import Cut

    ours, theirs = socket.socketpair()
    with ours, theirs:
        cut = Cut()
        cut.attach(ours)
        cut.release()
        cut.now()
        theirs.sendall(b"x")
        assert ours.recv(1) == b"x"
        ours.sendall(b"y")
        assert theirs.recv(1) == b"y"
    assert not cut.done


def test_a_deadline_cuts_a_socket_attached_after_it():
    """A socket attached once the deadline has passed is shut down at once."""
    import socket

    from dropscribe.transcribe.cutoff import Cut

    ours, theirs = socket.socketpair()
    with ours, theirs:
        cut = Cut()
        cut.now()
        cut.attach(ours)
        assert ours.recv(1) == b""
    assert cut.done
