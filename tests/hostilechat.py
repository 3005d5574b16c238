"""A hostile OpenAI-compatible chat server on 127.0.0.1 for attack13: FakeChat's honest
answers, unless a scripted mode says to misbehave on the raw socket (an endless answer,
a trickle, a stall after the headers, headers trickled, bodies of the wrong shape)."""

from __future__ import annotations

import collections
import json
import threading
from typing import Any

from fakechat import FakeChat

MiB = 1 << 20


class Hostile(FakeChat):
    """FakeChat whose next requests take the modes in ``modes`` (a mode: a callable
    given the handler, or a name of a raw misbehaviour)."""

    def __init__(self, api_key: str | None = None) -> None:
        super().__init__(api_key=api_key)
        self.modes: collections.deque[Any] = collections.deque()
        self.keep: Any = None  # a mode for every request once the script is spent
        self.headers_seen: list[str] = []
        self.closing = threading.Event()
        self.sent = 0  # bytes of misbehaviour written

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        super().__exit__(*exc)

    def _handler(self) -> Any:
        base = super()._handler()
        chat = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                chat.headers_seen.append(str(self.headers))
                mode = chat.modes.popleft() if chat.modes else chat.keep
                if mode is None:
                    return super().do_POST()
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with chat._lock:
                    chat.requests.append({"mode": str(mode)})
                try:
                    if callable(mode):
                        mode(self)
                    else:
                        getattr(chat, f"_{mode}")(self)
                except OSError:
                    pass
                self.close_connection = True
                return None

        return Handler

    # ------------------------------------------------------------ raw misbehaviour

    def _write(self, handler: Any, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.sent += len(data)

    def _huge(self, handler: Any) -> None:
        """An answer of 8 GB (no length given), a MiB at a time, until the client goes."""
        self._write(handler, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        self._write(handler, b"Connection: close\r\n\r\n")
        self._write(handler, b'{"choices":[{"message":{"content":"')
        block = b"a" * MiB
        for _ in range(8 * 1024):
            if self.closing.is_set():
                return
            self._write(handler, block)

    def _huge_declared(self, handler: Any) -> None:
        """A declared 4 GB answer."""
        self._write(handler, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        self._write(handler, b"Content-Length: 4000000000\r\n\r\n")
        block = b" " * MiB
        for _ in range(4 * 1024):
            if self.closing.is_set():
                return
            self._write(handler, block)

    def _trickle(self, handler: Any) -> None:
        """Headers, then a byte of the body every 0.3 s for ever."""
        self._write(handler, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        self._write(handler, b"Content-Length: 100000\r\n\r\n")
        while not self.closing.wait(0.3):
            self._write(handler, b" ")

    def _stall(self, handler: Any) -> None:
        """Headers, then nothing."""
        self._write(handler, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        self._write(handler, b"Content-Length: 100\r\n\r\n")
        self.closing.wait(600)

    def _trickle_headers(self, handler: Any) -> None:
        """The status line, then a header trickled a byte every 0.3 s for ever."""
        self._write(handler, b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not self.closing.wait(0.3):
            self._write(handler, b"a")


def raw(status: int, body: bytes | str, **headers: str) -> Any:
    """A mode answering ``body`` as it is, with ``status`` and ``headers``."""
    data = body.encode() if isinstance(body, str) else body

    def send(handler: Any) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(data)

    send.__name__ = f"raw{status}"
    return send


def completion(content: Any, finish: Any = "stop", usage: Any = None, **more: Any) -> Any:
    """A mode answering a chat completion whose parts may be of any shape."""
    body: dict[str, Any] = {
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}]
    }
    if usage is not None:
        body["usage"] = usage
    body.update(more)
    return raw(200, json.dumps(body))
