"""The transcriber of each endpoint, as a reload leaves it.

A reload that changes an endpoint (its key, URL, limits) swaps in a new client; the
one it replaces is closed, with its pooled connections (or its loaded model), as
soon as no upload is using it any more. An upload takes the current client for each
request (``using``), so a request sent after a reload carries the new key.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.transcript import Transcriber


class Clients:
    def __init__(self, clients: dict[str, Transcriber]) -> None:
        self._current = dict(clients)
        self._uses: dict[int, int] = {}  # id(client): requests it is sending now
        self._retired: dict[int, Transcriber] = {}  # replaced, closed when unused
        self._lock = threading.Lock()

    def get(self, name: str) -> Transcriber:
        with self._lock:
            return self._current[name]

    def current(self) -> dict[str, Transcriber]:
        with self._lock:
            return dict(self._current)

    def every(self) -> list[Transcriber]:
        """The current clients and the replaced ones still in use (to close at the end)."""
        with self._lock:
            return [*self._current.values(), *self._retired.values()]

    def is_current(self, client: Transcriber) -> bool:
        with self._lock:
            return self._current.get(client.endpoint.name) is client

    @contextlib.contextmanager
    def using(self, name: str) -> Iterator[Transcriber]:
        """The endpoint's client as it is now, not closed while the block runs."""
        with self._lock:
            client = self._current[name]
            self._uses[id(client)] = self._uses.get(id(client), 0) + 1
        try:
            yield client
        finally:
            with self._lock:
                left = self._uses[id(client)] - 1
                if left:
                    self._uses[id(client)] = left
                else:
                    del self._uses[id(client)]
                done = not left and self._retired.pop(id(client), None) is not None
            if done:
                client.close()

    def replace(self, clients: dict[str, Transcriber]) -> list[str]:
        """Use ``clients`` from now on; returns the names whose client is new. Each client
        left out or replaced is closed now, or when its last request ends."""
        keep = {id(client) for client in clients.values()}
        with self._lock:
            changed = [n for n, c in clients.items() if self._current.get(n) is not c]
            gone = [c for c in self._current.values() if id(c) not in keep]
            self._current = dict(clients)
            idle = [c for c in gone if id(c) not in self._uses]
            self._retired.update({id(c): c for c in gone if id(c) in self._uses})
        for client in idle:
            client.close()
        return changed
