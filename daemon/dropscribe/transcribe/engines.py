"""The transcriber for an endpoint: the local engine for ``kind: local``, else the HTTP
client."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    # Each imported where it is used: a local-only config needs no httpx, an API no engine.
    if endpoint.kind == "local":
        from dropscribe.transcribe.local import LocalEngine  # noqa: PLC0415

        return LocalEngine(endpoint, abort)
    from dropscribe.transcribe.http import Client  # noqa: PLC0415

    return Client(endpoint, transport=transport)
