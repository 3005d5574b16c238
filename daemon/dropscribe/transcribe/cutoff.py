"""One deadline for a whole HTTP request, whatever it is waiting for.

httpx's timeouts are per read and per write: a server that sends its status line, its
headers or its body a byte every few seconds never meets one, and keeps the thread that
asked for as long as it likes. A deadline here is a timer that shuts the request's
socket down when it passes: a blocked read or write returns at once, and httpx raises.

The socket is found two ways, so every request of ours has one the timer can reach:

- httpcore's ``trace`` extension hands over each new connection's socket (and the TLS
  one that replaces it); enough for a client that opens a connection per request.
- ``transport()``'s pool wraps every connection it makes, so a kept-alive connection
  taken again from the pool tells the deadline of the thread now using it.

A shutdown cannot interrupt a name lookup: ``transport()``'s pool looks names up itself,
in a thread it waits for no longer than the connect timeout or the deadline (resolve.py).
Behind an environment proxy (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``) the pool is
httpcore's proxy pool over the same connections: the proxy's name is looked up the same
way, and its connections are kept alive and cut as any (hooks16; a SOCKS proxy's too:
bounds17, its handshake read and written on the same cut streams).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from dropscribe.errors import SetupError
from dropscribe.transcribe import resolve

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# The trace events whose return value is a connection's stream (httpcore's names).
CONNECTED = frozenset(
    {
        "connection.connect_tcp.complete",
        "connection.connect_unix_socket.complete",
        "connection.start_tls.complete",
    }
)

_current = threading.local()  # .cut: the deadline of the request this thread is making


class Cut:
    """A request's socket, shut down when its deadline passes (``now``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.done = False  # the deadline passed: whatever the request raised, it was this
        self._released = False
        self.seconds = math.inf  # the deadline's length
        self.until = math.inf  # when it passes (time.monotonic)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace extension: a new connection's socket is the request's."""
        if event in CONNECTED:
            stream = info.get("return_value")
            if stream is not None:
                self.attach(stream.get_extra_info("socket"))

    def attach(self, sock: socket.socket | None) -> None:
        """``sock`` carries the request now (cut at once if the deadline has passed)."""
        with self._lock:
            if sock is not None and sock is not self._socket and not self._released:
                self._socket = sock
                if self.done:
                    self._shut()

    def release(self) -> None:
        """The answer is in: its connection may go back to the pool, and to another
        request, so a deadline passing from now on must not cut it."""
        with self._lock:
            self._socket = None
            self._released = True

    def now(self) -> None:
        """The deadline: shut the socket down, and any socket attached from now on."""
        with self._lock:
            if not self._released:  # released: the answer came in time
                self.done = True
                self._shut()

    def _shut(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                # the plain socket's shutdown even for TLS: it wakes a blocked read
                # without touching the TLS object another thread is inside
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Cut]:
    """The block's requests end within ``seconds``: pass ``cut.trace`` as the request's
    ``trace`` extension; after an httpx error, ``cut.done`` says the deadline caused it."""
    cut = Cut()
    cut.seconds, cut.until = seconds, time.monotonic() + seconds
    timer = threading.Timer(seconds, cut.now)
    timer.name = "dropscribe-deadline"
    timer.daemon = True
    outer = getattr(_current, "cut", None)
    _current.cut = cut
    timer.start()
    try:
        yield cut
    finally:
        timer.cancel()
        _current.cut = outer


def _attach(stream: httpcore.NetworkStream) -> None:
    cut: Cut | None = getattr(_current, "cut", None)
    if cut is not None:
        cut.attach(stream.get_extra_info("socket"))


class _Stream(httpcore.NetworkStream):
    """A connection's stream that tells the deadline of the thread using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        _attach(inner)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        _attach(self._inner)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _attach(self._inner)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class Late(httpcore.ConnectTimeout):
    """attack15: no connection before the request's deadline (the message says which
    bound: the connect timeout, or what was left of ``timeout``)."""


class _Backend(httpcore.NetworkBackend):
    """httpcore's own sockets, each stream wrapped (``_Stream``), to addresses looked up
    under the connect timeout and the deadline (``resolve``)."""

    def __init__(
        self, resolver: resolve.Resolver = resolve.RESOLVER, proxy: Proxy | None = None
    ) -> None:
        self._inner = httpcore.SyncBackend()
        self._resolver = resolver
        self._proxy = proxy  # its host's lookup is named as the proxy's

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        hosts = [host]
        if not resolve.literal(host):
            seconds, bound = _bound(timeout)
            named = "the name"
            if self._proxy is not None and host == self._proxy.host:
                named = f"the proxy's name ({self._proxy.variable})"
            found = self._resolver.addresses(host, port, seconds, bound, named=named)
            hosts = list(dict.fromkeys(str(address[4][0]) for address in found))
        for address in hosts[:-1]:  # each in turn, as socket.create_connection tries them
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return self._connected(address, port, timeout, local_address, socket_options)
        return self._connected(hosts[-1], port, timeout, local_address, socket_options)

    def _connected(
        self,
        host: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.NetworkStream:
        # attack15: each address's try within what is left of the deadline too (a name
        # with many addresses that drop connections pinned the request connect_timeout
        # each, past its timeout: a socket not yet connected is none the timer can shut)
        seconds, bound = _bound(timeout)
        late = Late(f"no connection within {bound}")
        if seconds <= 0:
            raise late
        bounded = None if seconds == math.inf else seconds
        try:
            stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        except httpcore.ConnectTimeout:
            if bounded is not None and bounded != timeout:  # the deadline's bound, not ours
                raise late from None
            raise
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _bound(connect: float | None) -> tuple[float, str]:
    """How long a lookup may take: the connect timeout, or what is left of this thread's
    deadline if that is less; and which bound it is, in words."""
    cut: Cut | None = getattr(_current, "cut", None)
    left = cut.until - time.monotonic() if cut is not None else math.inf
    # hooks16: a connect timeout as long as the deadline is the deadline (a webhook's one
    # ``timeout``): named as such, whichever of the two is a hair the nearer
    longest = cut.seconds if cut is not None else math.inf
    if connect is not None and connect <= left and connect < longest:
        return connect, f"{connect:g} s (connect_timeout)"
    if cut is None:
        return math.inf, "no time (no bound)"
    return max(0.0, left), f"{cut.seconds:g} s (timeout)"


SCHEMES = ("http", "https", "socks5", "socks5h")  # the proxies httpx can go through


class Proxy:
    """An environment proxy: its URL, and the variable that set it (for messages). One
    that httpx cannot use raises SetupError naming the variable (never its value: it may
    hold a password), not an error of httpx's at the first request (review16: a webhook's
    crashed its job, and the file was quarantined)."""

    def __init__(self, url: str, variable: str) -> None:
        self.url = url
        self.variable = variable
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            # attack16: never httpx's words for a value with a password in it: they quote
            # the password as a port when it holds a / ? or # ("Invalid port: 'secret'")
            why = "a password's / ? # must be %-encoded" if "@" in url else str(exc)
            raise _unusable(variable, f"it is not a URL ({why})") from None
        if parsed.scheme not in SCHEMES:
            raise _unusable(variable, f"a {parsed.scheme}:// proxy, not {', '.join(SCHEMES)}")
        if not parsed.host:
            raise _unusable(variable, "it names no host")
        if parsed.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
            raise _unusable(variable, "a SOCKS proxy needs socksio: pip install 'httpx[socks]'")
        self.host = parsed.raw_host.decode("ascii")


def _unusable(variable: str, why: str) -> SetupError:
    return SetupError(f"the environment's {variable} cannot be used: {why}; fix or unset it")


class _SOCKSProxy(httpcore.SOCKSProxy):
    """httpcore's SOCKS pool, whose proxy's malformed reply (a closed connection, a cut
    one, garbage) is httpcore's ProxyError, as a refused tunnel is: socksio's own error
    got past httpx (attack17b: the job crashed and the recording was quarantined, the
    radar's thread died)."""

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        import socksio  # noqa: PLC0415 - present: Proxy checked it for a SOCKS proxy

        try:
            return super().handle_request(request)
        except socksio.SOCKSError as exc:
            why = str(exc) or exc.__class__.__name__
            raise httpcore.ProxyError(f"the SOCKS proxy's reply: {why}") from exc


class _Transport(httpx.HTTPTransport):
    """httpx's transport over a pool of ``_Backend`` connections (httpx takes no network
    backend, so its pool is replaced by one made with the same limits): a plain pool, or
    one through ``proxy`` as httpx would make it."""

    def __init__(self, limits: httpx.Limits, proxy: Proxy | None = None) -> None:
        super().__init__(limits=limits)
        pooled: dict[str, Any] = {  # as httpx makes its pool, over our backend
            "ssl_context": httpx.create_ssl_context(),
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
            "network_backend": _Backend(proxy=proxy),
        }
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**pooled)
            return
        via = httpx.Proxy(proxy.url)
        where = httpcore.URL(
            scheme=via.url.raw_scheme,
            host=via.url.raw_host,
            port=via.url.port,
            target=via.url.raw_path,
        )
        if via.url.scheme.startswith("socks"):  # bounds17: httpcore's SOCKS pool, ours beneath
            self._pool = _SOCKSProxy(proxy_url=where, proxy_auth=via.raw_auth, **pooled)
            return
        self._pool = httpcore.HTTPProxy(
            proxy_url=where,
            proxy_auth=via.raw_auth,
            proxy_headers=via.headers.raw,
            proxy_ssl_context=via.ssl_context,
            **pooled,
        )


def transport(url: str, limits: httpx.Limits) -> httpx.BaseTransport:
    """A kept-alive pool for ``url`` whose every request a deadline can cut, through the
    environment proxy that applies to ``url`` if one does (as httpx reads them: http,
    https, and bounds17: SOCKS too, its name looked up under the bound as an HTTP
    proxy's)."""
    return _Transport(limits, _proxy(url))


def check_proxies(urls: Iterable[str]) -> None:
    """Raise SetupError if an environment proxy that would route one of ``urls`` cannot be
    used: at the start, before worker processes (review16: each died of it, a traceback
    apiece) or any other thread makes a client."""
    for url in urls:
        _proxy(url)


def _proxy(url: str) -> Proxy | None:
    """The ``*_PROXY`` environment variable that would route ``url`` (as httpx reads
    them: the scheme's own before ALL_PROXY, NO_PROXY honoured), or None."""
    import urllib.request  # noqa: PLC0415 - read once per client, not per request

    target = httpx.URL(url)
    found = urllib.request.getproxies()
    for scheme in (target.scheme, "all"):
        value = found.get(scheme)
        if value:
            if urllib.request.proxy_bypass(target.host):
                return None
            value = value if "://" in value else f"http://{value}"
            return Proxy(value, f"{scheme.upper()}_PROXY")
    return None


def via(url: str) -> str:
    """ " through the proxy HTTPS_PROXY names (host)" where an environment proxy routes
    ``url``, else "": a connection that fails there is the proxy's (its host alone, never
    the value: it may hold a password)."""
    try:
        proxy = _proxy(url)
    except SetupError:  # refused at start; a reload refuses it too
        return ""
    return "" if proxy is None else f" through the proxy {proxy.variable} names ({proxy.host})"
