"""Name lookups under a deadline.

``getaddrinfo`` takes no timeout, and no socket shutdown or signal interrupts it: a
resolver that never answers holds the thread that asked for as long as the C library
keeps trying (minutes, with ``options timeout:30 attempts:5`` in resolv.conf). So a
lookup runs in a thread of its own and the asker waits for it no longer than its
deadline; a lookup left behind finishes on its own, and is dropped when it does.

Lookups of one name share their thread, and at most ``most`` run at once: a dead
resolver holds that many threads, never more (an asker finding them all busy waits for
one, within the same deadline).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpcore

if TYPE_CHECKING:
    from collections.abc import Callable

LOOKUPS = 8  # lookups running at once, at most (distinct names: few endpoints have more)

Address = tuple[Any, ...]  # one of getaddrinfo's answers: (family, type, proto, name, sockaddr)


class Unresolved(httpcore.ConnectTimeout):
    """The name did not resolve within the request's deadline (the message says which
    name, how long and the setting that bounds it)."""


class _Lookup:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.found: list[Address] = []
        self.error: OSError | UnicodeError | None = None


class Resolver:
    """``lookup`` (``socket.getaddrinfo``) with a deadline, in at most ``most`` threads."""

    def __init__(
        self, lookup: Callable[..., list[Address]] = socket.getaddrinfo, most: int = LOOKUPS
    ) -> None:
        self._lookup = lookup
        self._most = most
        self._changed = threading.Condition()
        self._pending: dict[tuple[str, int], _Lookup] = {}

    @property
    def running(self) -> int:
        """Lookups whose threads are still running (a dead resolver's among them)."""
        with self._changed:
            return len(self._pending)

    def addresses(
        self, host: str, port: int, seconds: float, bound: str, *, named: str = "the name"
    ) -> list[Address]:
        """``host``'s addresses for a TCP connection to ``port``, within ``seconds`` (the
        ``bound``, in words: "2 s (connect_timeout)"); raises Unresolved when they take
        longer, httpcore's ConnectError (caused by the resolver's gaierror, or the
        UnicodeError of a name it cannot encode) when none. ``named``: what the name is,
        in words ("the proxy's name (HTTPS_PROXY)")."""
        until = time.monotonic() + seconds
        key = (host, port)
        with self._changed:
            while (lookup := self._pending.get(key)) is None and len(self._pending) >= self._most:
                if not self._changed.wait(_left(until)):
                    raise _late(named, host, bound)
            if lookup is None:
                lookup = self._pending[key] = _Lookup()
                threading.Thread(
                    target=self._run, args=(key, lookup), name="dropscribe-lookup", daemon=True
                ).start()
        if not lookup.done.wait(_left(until)):
            raise _late(named, host, bound)
        if lookup.error is not None:
            error = lookup.error  # a fresh one per asker: a shared one's traceback grows
            raise httpcore.ConnectError(str(error)) from type(error)(*error.args)
        if not lookup.found:
            raise httpcore.ConnectError(f"the name {host!r} has no address")
        return lookup.found

    def _run(self, key: tuple[str, int], lookup: _Lookup) -> None:
        try:
            lookup.found = self._lookup(*key, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:  # UnicodeError: a label idna cannot encode
            lookup.error = exc
        finally:
            with self._changed:
                del self._pending[key]
                self._changed.notify_all()
            lookup.done.set()


def _left(until: float) -> float | None:
    """Seconds to wait for ``until`` (None: no bound)."""
    return None if until == math.inf else max(0.0, until - time.monotonic())


def _late(named: str, host: str, bound: str) -> Unresolved:
    return Unresolved(f"{named} {host!r} did not resolve within {bound}")


def literal(host: str) -> bool:
    """``host`` is an IP address already: nothing to look up."""
    try:
        socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return False
    return True


RESOLVER = Resolver()  # the process's: one bound on lookup threads for every client
