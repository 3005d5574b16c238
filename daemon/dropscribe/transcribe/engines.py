"""The transcriber for an endpoint: the local engine for ``kind: local``, else the HTTP
client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.transcribe.http import Client
from dropscribe.transcribe.local import LocalEngine

if TYPE_CHECKING:
    import threading

    import httpx

    from dropscribe.transcript import Transcriber
    from dropscribe.vocab.endpoints import Endpoint


def make_client(
    endpoint: Endpoint,
    transport: httpx.BaseTransport | None = None,
    abort: threading.Event | None = None,
) -> Transcriber:
    """faster-whisper in-process (which stops between segments once ``abort`` is set), or
    the HTTP client (through ``transport``, where a test gives one)."""
    if endpoint.kind == "local":
        return LocalEngine(endpoint, abort)
    return Client(endpoint, transport=transport)
