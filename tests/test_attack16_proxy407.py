"""attack16: a proxy that refuses our credentials (407 Proxy Authentication Required) is
the endpoint's trouble, not the file's: the file is not quarantined (every file was, each
moved to failed/ for a retry by hand), it waits in place as behind a refused key (401),
and the proxy's password shows nowhere; through the real dropscribe process, its
HTTP_PROXY a proxy on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav, wait_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

PASSWORD = "proxy-SECRET-attack16"
REFUSAL = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="attack16"\r\nContent-Length: 0\r\n\r\n'
)


BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def refusing(request: pytest.FixtureRequest) -> Iterator[tuple[int, list[bytes]]]:
    """A proxy on 127.0.0.1 answering every request 407 (or the answer the test names);
    (its port, the requests' heads)."""
    answer = getattr(request, "param", REFUSAL)
    listener = socket.create_server(("127.0.0.1", 0))
    heads: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        piece = conn.recv(65536)
                        if not piece:
                            break
                        head += piece
                    heads.append(head.split(b"\r\n\r\n")[0])
                    conn.sendall(answer)
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], heads
    finally:
        listener.close()
        thread.join(5)


def through(setup, variable: str, proxy: str, seen) -> tuple[DaemonProcess, Path]:
    """One worker, a file dropped, the daemon run behind ``variable`` until ``seen``
    (of its process) holds, then stopped; the process and the file."""
    setup.data["workers"] = 1
    held = make_wav(setup.inbox / "held.wav")
    proc = DaemonProcess(setup, env={variable: proxy, "NO_PROXY": ""})
    try:
        wait_for(lambda: seen(proc), timeout=30, what="the proxy's answer seen")
    finally:
        proc.signal(15)
        proc.wait(30)
    assert not proc.named("file.failed")
    assert held.exists()
    assert not (setup.inbox / "failed").exists()
    return proc, held


def refused(proc: DaemonProcess) -> bool:
    return bool(proc.named("file.failed") or proc.named("endpoint.paused"))


def test_a_proxy_refusing_its_credentials_quarantines_no_file(setup, refusing):
    """Every upload through HTTP_PROXY answered 407: the endpoint is paused with the
    status named (as for a refused key), no file.failed, the file stays where it is, and
    the password is in no line."""
    port, heads = refusing
    proxy = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    proc, _ = through(setup, "HTTP_PROXY", proxy, refused)
    assert heads  # it went through the proxy
    [paused] = proc.named("endpoint.paused")
    assert paused["reason"].startswith("HTTP 407")
    assert PASSWORD not in "".join(proc.raw)


def test_a_tunnel_refused_quarantines_no_file(setup, refusing):
    """An https endpoint through HTTPS_PROXY whose CONNECT is answered 407: no file is
    failed and quarantined, the file stays where it is, the password is in no line."""
    port, heads = refusing
    setup.data["endpoints"]["local"]["base_url"] = "https://127.0.0.1:9/v1"
    proxy = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    proc, _ = through(setup, "HTTPS_PROXY", proxy, refused)
    assert heads[0].startswith(b"CONNECT 127.0.0.1:9 ")
    assert PASSWORD not in "".join(proc.raw)
    [paused] = proc.named("endpoint.paused")
    assert "through the proxy HTTPS_PROXY names (127.0.0.1)" in paused["reason"]


@pytest.mark.parametrize("refusing", [BAD_GATEWAY], indirect=True)
def test_a_tunnel_to_a_server_down_quarantines_no_file(setup, refusing):
    """An https endpoint through HTTPS_PROXY whose CONNECT is answered 502 (the server
    behind it down): an outage, retried; no file is failed and quarantined."""
    port, heads = refusing
    setup.data["endpoints"]["local"]["base_url"] = "https://127.0.0.1:9/v1"

    def outage(proc: DaemonProcess) -> bool:
        return bool(proc.named("file.failed") or len(proc.named("upload.failed")) > 3)

    proc, _ = through(setup, "HTTPS_PROXY", f"http://127.0.0.1:{port}", outage)
    assert heads[0].startswith(b"CONNECT 127.0.0.1:9 ")
    said = proc.named("upload.failed")[0]["error"]
    assert said.startswith("no tunnel to https://127.0.0.1:9/v1 through")
    assert "the proxy HTTPS_PROXY names (127.0.0.1)" in said
