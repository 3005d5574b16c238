"""hooks16, the pure pieces: which environment proxy routes a URL (as httpx reads them),
that every http(s) proxy gets our transport, the bound named for a webhook's one timeout,
and a lookup's message naming the proxy."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import httpx
import pytest

from dropscribe.transcribe import cutoff, resolve

if TYPE_CHECKING:
    from typing import Any

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


def test_every_http_proxy_gets_our_transport_and_socks_httpxs(monkeypatch):
    """An http(s) proxy's pool is ours (its name looked up under the deadline); a SOCKS
    proxy is left to httpx (None)."""
    monkeypatch.setenv("HTTP_PROXY", "http://web.proxy:3128")
    assert isinstance(cutoff.transport("http://api.example/v1", LIMITS), httpx.HTTPTransport)
    monkeypatch.setenv("HTTP_PROXY", "socks5://socks.proxy:1080")
    assert cutoff.transport("http://api.example/v1", LIMITS) is None


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
