"""Chat steps on cutoff.transport(): kept-alive connections reused, each request still cut
at its timeout (plain and TLS); and name lookups under a deadline (resolve.py), with the
lookup threads a dead resolver can hold bounded."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from typing import TYPE_CHECKING, Any

import httpcore
import pytest

from conftest import patience, wait_for
from dropscribe.steps.chat import ChatClient
from dropscribe.transcribe.resolve import Resolver, Unresolved
from test_deadline14 import Hostile, _timed_out, ended, endpoint

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = json.dumps(
    {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
).encode()


@pytest.fixture
def server() -> Iterator[Hostile]:
    with Hostile() as hostile:
        hostile.answers["chat"] = (200, ANSWER, {})
        yield hostile


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
        hostile.answers["chat"] = (200, ANSWER, {})
        yield hostile


@pytest.mark.parametrize("fixture", ["server", "tls"])
def test_many_chat_steps_reuse_one_connection(request, fixture):
    """Five completions in turn, over HTTP or HTTPS, take one connection."""
    hostile: Hostile = request.getfixturevalue(fixture)
    client = ChatClient(endpoint(hostile.base_url))
    try:
        texts = [client.complete(BODY).text for _ in range(5)]
    finally:
        client.close()
    assert texts == ["ok"] * 5
    assert hostile.connections == 1


@pytest.mark.parametrize("fixture", ["server", "tls"])
def test_a_kept_alive_chat_connection_is_cut_at_the_timeout(request, fixture):
    """A second completion, on the first's kept-alive connection, whose headers then trickle,
    ends at its timeout."""
    hostile: Hostile = request.getfixturevalue(fixture)
    hostile.modes.extend([None, "trickle_head"])
    client = ChatClient(endpoint(hostile.base_url))
    try:
        assert client.complete(BODY).text == "ok"
        _, error = ended(hostile, lambda: client.complete(BODY))
    finally:
        client.close()
    _timed_out(error, f"{hostile.base_url}/chat/completions")
    assert hostile.connections == 1
    assert hostile.served == [None, "trickle_head"]


class Stalled:
    """A getaddrinfo that answers only once ``answer`` is set (a resolver gone quiet)."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.asked.append(host)
        self.answer.wait(patience(30))
        return socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)


def test_a_stalled_lookup_ends_at_its_bound_naming_the_host_and_setting():
    """A lookup that never answers raises Unresolved at the bound, naming host and setting."""
    stalled = Stalled()
    resolver = Resolver(stalled)
    try:
        with pytest.raises(Unresolved) as info:
            resolver.addresses("chat.example", 443, 0.2, "0.2 s (connect_timeout)")
    finally:
        stalled.answer.set()
    assert str(info.value) == (
        "the name 'chat.example' did not resolve within 0.2 s (connect_timeout)"
    )


def test_a_dead_resolver_holds_a_bounded_number_of_threads():
    """Askers of one name share a lookup; distinct names start at most ``most`` threads, the
    rest fail at their bound; once the resolver answers, every thread is gone."""
    stalled = Stalled()
    resolver = Resolver(stalled, most=2)
    errors: list[BaseException] = []

    def ask(host: str) -> None:
        try:
            resolver.addresses(host, 80, 0.3, "0.3 s (timeout)")
        except Unresolved as exc:
            errors.append(exc)

    askers = [
        threading.Thread(target=ask, args=(host,))
        for host in ["a.example"] * 3 + ["b.example", "c.example", "d.example"]
    ]
    for thread in askers:
        thread.start()
    for thread in askers:
        thread.join(patience(10))
    try:
        assert len(errors) == 6
        assert resolver.running == 2
        # two names asked, once each: which two is the threads' race (the first started
        # need not be the first to ask, on a busy machine)
        assert len(stalled.asked) == len(set(stalled.asked)) == 2
    finally:
        stalled.answer.set()
    wait_for(lambda: resolver.running == 0, 10, "the lookup threads to end")
    found = resolver.addresses("a.example", 80, patience(5), "5 s (timeout)")
    assert found[0][4] == ("127.0.0.1", 80)


def test_a_name_that_does_not_resolve_is_a_connect_error_with_its_cause():
    """The resolver's own refusal (gaierror) leaves as httpcore's ConnectError caused by it."""

    def refuses(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(httpcore.ConnectError) as info:
        Resolver(refuses).addresses("nowhere.example", 80, patience(5), "5 s (timeout)")
    assert isinstance(info.value.__cause__, socket.gaierror)
