"""bounds17, through the real ``dropscribe`` process: uploads behind a SOCKS5 proxy
(``ALL_PROXY=socks5://...``) go through the daemon's own connections, as behind an HTTP
proxy: the proxy's name is looked up under the connect timeout (a resolver that never
answers, in a mount namespace: test_chat15_daemon's ``silent_resolver``), the error names
the variable and the host, never the value, and connections to the proxy are kept alive.
The SOCKS5 server is a real one on 127.0.0.1 (below), relaying to the fake API."""

from __future__ import annotations

import contextlib
import signal
import socket
import socketserver
import struct
import threading
from typing import TYPE_CHECKING, Self

from conftest import DaemonProcess, make_wav
from test_chat15_daemon import silent_resolver  # noqa: F401 - the fixture, used by name
from test_hooks16_daemon import upload_through_unresolved

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup


def only_all_proxy(value: str) -> dict[str, str]:
    """The environment that routes every request through ALL_PROXY=``value`` (both
    spellings, so the machine's own never win), none bypassing it."""
    env = {f"{v}{s}": "" for v in ("HTTP", "HTTPS", "NO") for s in ("_PROXY", "_proxy")}
    return env | {"ALL_PROXY": value, "all_proxy": value}


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed mid-handshake")
        data += chunk
    return data


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


class Socks5:
    """A SOCKS5 server on 127.0.0.1 (no authentication, or any username and password:
    RFC 1928/1929), CONNECT only, relaying each connection to its target. Counts the
    connections it took and keeps the targets and usernames it was asked for."""

    def __init__(self) -> None:
        self.connections = 0
        self.targets: list[tuple[str, int]] = []
        self.users: list[str] = []
        socks = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                socks.connections += 1
                client: socket.socket = self.request
                _, count = _exactly(client, 2)
                methods = _exactly(client, count)
                if 2 in methods:  # username and password (RFC 1929): any will do
                    client.sendall(b"\x05\x02")
                    _, size = _exactly(client, 2)
                    socks.users.append(_exactly(client, size).decode())
                    _exactly(client, _exactly(client, 1)[0])
                    client.sendall(b"\x01\x00")
                else:
                    client.sendall(b"\x05\x00")
                _, command, _, kind = _exactly(client, 4)
                if kind == 1:
                    host = socket.inet_ntoa(_exactly(client, 4))
                elif kind == 3:
                    host = _exactly(client, _exactly(client, 1)[0]).decode()
                else:
                    host = socket.inet_ntop(socket.AF_INET6, _exactly(client, 16))
                (port,) = struct.unpack("!H", _exactly(client, 2))
                socks.targets.append((host, port))
                assert command == 1  # CONNECT
                with socket.create_connection((host, port), timeout=10) as upstream:
                    client.sendall(b"\x05\x00\x00\x01" + bytes(4) + bytes(2))
                    back = threading.Thread(target=_pipe, args=(upstream, client))
                    back.start()
                    _pipe(client, upstream)
                    back.join()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = False
            block_on_close = True  # server_close joins every connection's thread

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"socks5://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_an_upload_behind_a_socks_proxy_whose_name_never_resolves_fails_at_connect_timeout(
    setup: Setup,
    silent_resolver: Path,  # noqa: F811 - the fixture imported by name
) -> None:
    """ALL_PROXY=socks5://user:secret@proxy.stalls.test:1080, whose name the resolver
    never answers: the upload fails within the connect_timeout naming the variable, the
    proxy's host and the setting (not the password), and the daemon stops cleanly."""
    env = only_all_proxy("socks5://user:s3cret-value@proxy.stalls.test:1080")
    daemon = upload_through_unresolved(setup, env, silent_resolver)
    assert daemon.variable_named("ALL_PROXY")
    assert not any("s3cret-value" in line for line in daemon.raw)
    assert setup.api.connections == 0  # nothing reached the server past the proxy


def test_uploads_behind_a_working_socks_proxy_keep_its_connection_alive(setup: Setup) -> None:
    """Three files, one after the other, through ALL_PROXY=socks5://user:pass@127.0.0.1:
    all done, the proxy asked for the fake API, with the username; the uploads share one
    connection kept alive (httpx's own transport opened one per request), besides the
    one of the models listing at start."""
    setup.data["workers"] = 1
    with Socks5() as socks:
        env = only_all_proxy(socks.url.replace("//", "//someone:pw@"))
        daemon = DaemonProcess(setup, env=env)
        try:
            daemon.wait_event("daemon.started")
            for count, name in enumerate(("a", "b", "c"), start=1):
                make_wav(setup.inbox / f"{name}.wav", seconds=0.4 + count / 10)
                daemon.wait_event("file.done", count=count, timeout=30)
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
    port = int(setup.api.base_url.split(":")[2].split("/")[0])
    assert set(socks.targets) == {("127.0.0.1", port)}
    assert set(socks.users) == {"someone"}
    assert len(setup.api.uploads) == 3
    assert socks.connections == setup.api.connections == 1 + setup.api.listings
