"""The HTTP transport to a transcription endpoint: one multipart request sent and its
answer read, within the endpoint's timeout and size cap.

The only module that sends transcription requests and the only one that catches
their ``httpx`` exceptions: every failure leaves here as one of ours (errors.py)
carrying the status, the request id and the server's message. What to send is the
endpoint kind's (``kinds/``); what an answer means, ``answers.py``'s.
"""

from __future__ import annotations

import json
import math
import os
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import httpx

from dropscribe import __version__, names, transcript
from dropscribe.audio import voices
from dropscribe.errors import (
    EndpointError,
    OutageError,
    PermanentError,
    RetryableError,
    TranscriptionError,
)
from dropscribe.transcribe import answers, bodies, cutoff, inflate, kinds, models, radar, resolve

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.transcript import Transcript
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

# Part content types by extension; httpx's guess knows none of the Ogg or m4a spellings.
MIME_TYPES = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "mpga": "audio/mpeg",
    "mpeg": "audio/mpeg",
    "mp4": "audio/mp4",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}


class _Coalesced(httpx.SyncByteStream):
    """httpx writes a multipart body in many small pieces (64 KiB of file at most, and
    a few bytes per form field); each is a send() and a round of lock traffic. This
    joins them into blocks of ``size`` bytes, so memory stays flat and syscalls few."""

    def __init__(self, inner: Any, size: int = 1 << 20, deadline: float = math.inf) -> None:
        self._inner = inner
        self._size = size
        self._deadline = deadline  # the whole request's (time.monotonic)

    def __iter__(self) -> Iterator[bytes]:
        block = bytearray()
        for piece in self._inner:
            block += piece
            if len(block) >= self._size:
                if time.monotonic() > self._deadline:
                    raise _TooLate
                yield bytes(block)
                block.clear()
        if block:
            yield bytes(block)


# attack22: of an error answer (not 2xx), the body read: its message is 300 characters at
# most, a server's honest one a few kB. A 64 MiB one ([0,0,...], 60 kB gzipped) took 29 s
# and 2.6 GB to say, and one over max_answer_bytes made a 503 the file's fault.
ERROR_BYTES = 1 << 20


class Client:
    """Uploads files to one endpoint over a keep-alive connection pool."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self._clock = clock
        headers = {
            "User-Agent": f"dropscribe/{__version__}",
            "Accept-Encoding": inflate.ASKED,
            **kinds.auth_headers(endpoint),
        }
        self._limit = kinds.upload_limit(endpoint)
        limits = httpx.Limits(
            max_connections=endpoint.max_concurrency,
            max_keepalive_connections=endpoint.max_concurrency,
        )
        if transport is None:  # one whose kept-alive connections a deadline can cut
            transport = cutoff.transport(endpoint.base_url, limits)
        self._http = httpx.Client(
            base_url=endpoint.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(endpoint.timeout, connect=endpoint.connect_timeout),
            limits=limits,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Client(endpoint={self.endpoint.name!r}, base_url={self.endpoint.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def transcribe(
        self,
        path: Path,
        settings: FolderSettings,
        ask: models.Ask | None = None,
        *,
        name: str | None = None,
    ) -> Transcript:
        """Stream one file to the endpoint and return its transcript, or raise.

        ``ask`` is what the request carries; by default, what the model's table says.
        ``name`` is the file name the server sees (its extension tells some servers the
        format); by default ``path``'s, which may be a ``/proc/self/fd`` path. The
        audio's length, when ``ask`` knows it (``Ask.seconds``: the probe's, a chunk's),
        holds a 2xx answer's bytes to what any answer for that much audio could be
        (``transcript.answer_bytes``)."""
        if ask is None:
            ask = models.asked(models.of(self.endpoint, settings.model), settings)
        known = voices.clips(settings.voices) if settings.voices is not None else ()
        request_shape = kinds.shape(self.endpoint, settings, ask, known)
        name = name or path.name
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        mime = MIME_TYPES.get(extension, "application/octet-stream")
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if self._limit is not None and size > self._limit:
                raise PermanentError(
                    f"file is {size / 2**20:.1f} MiB, over the {self._limit / 2**20:.1f} MiB"
                    f" that endpoint {self.endpoint.name!r} accepts in one upload"
                    " (max_upload_bytes)"
                )
            request = self._http.build_request(
                "POST",
                request_shape.path,
                params=request_shape.params,
                data=request_shape.fields,
                files={request_shape.file_field: (names.readable(name), fh, mime)},
            )
            response, body = self._exchange(request, self.endpoint.base_url, ask.seconds)
        return self._answer(response, body, ask.response_format, settings.model)

    def _exchange(
        self,
        request: httpx.Request,
        where: str,
        seconds: float | None = None,
        most: int | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """Send ``request`` and read its whole answer within the endpoint's timeout (the
        request's own body streamed under the same deadline, and the socket cut when it
        passes, whatever it was waiting for) and size cap (``_read``; ``most``: a lower
        one of the caller's); every failure one of ours."""
        deadline = time.monotonic() + self.endpoint.timeout
        request.stream = _Coalesced(request.stream, deadline=deadline)
        answered = False  # its status and headers in: "no complete answer" from then on
        with cutoff.deadline(self.endpoint.timeout) as cut:
            request.extensions["trace"] = cut.trace
            try:
                response = self._http.send(request, stream=True)
                answered = True
                try:
                    body = self._read(response, deadline, where, seconds, most)
                    cut.release()  # before the connection goes back to the pool
                finally:
                    response.close()
            except _TooLate:
                raise self._late(where, answered=True) from None
            except httpx.HTTPError as exc:
                if cut.done:
                    raise self._late(where, answered=answered) from None
                raise transport_error(exc, self.endpoint, where) from None
        if cut.done:  # the answer's end may be the cut's (an answer without a length)
            raise self._late(where, answered=True)
        return response, body

    def _late(self, where: str, *, answered: bool) -> RetryableError:
        """The deadline passed before the answer (``answered``: before its end)."""
        what = "complete answer" if answered else "answer"
        return RetryableError(
            f"no {what} from {where} within {self.endpoint.timeout:g} s (timeout)"
        )

    def catalogue(self) -> Any:
        """The server's ``GET {base}/models`` answer, parsed (for the deprecation radar,
        ``radar.py``); a TranscriptionError saying why when it cannot be had. Read to
        ``radar.LISTING_BYTES`` and no further (attack22: to max_answer_bytes, 64 MiB, and
        parsed whole in the daemon's radar thread at start and daily: the cap was named
        in radar.py and never applied)."""
        path = kinds.of(self.endpoint).models_path
        where = f"{self.endpoint.base_url}/{path}"
        request = self._http.build_request("GET", path)
        response, body = self._exchange(request, where, most=radar.LISTING_BYTES)
        if not 200 <= response.status_code < 300:
            raise answers.error(
                response.status_code,
                response.headers,
                body,
                None,
                scrub=self._scrub,
                now=self._clock(),
            )
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise PermanentError(f"{where} did not answer JSON", status=200) from None

    def _read(
        self,
        response: httpx.Response,
        deadline: float,
        where: str,
        seconds: float | None,
        most: int | None = None,
    ) -> bytes:
        """The answer's body, decompressed, within the request's deadline and size cap:
        ``max_answer_bytes``, and for a 2xx answer to ``seconds`` of audio what any answer
        for it could be (answers21: 64 MiB for one second was read and parsed whole before
        it was refused), stopped as soon as it is over (the connection closed unread). An
        error answer's body is read to ``ERROR_BYTES`` and no further, never refused: what
        it says is in its start, and its status says what it is."""
        limit = self.endpoint.max_answer_bytes
        held = transcript.answer_bytes(seconds) if response.is_success else None
        if held is None or held >= limit:
            held = None  # max_answer_bytes, the ceiling, rules
        else:
            limit = held
        if most is not None and most < limit:  # the caller's own cap rules
            limit, held, seconds = most, None, None
        else:
            most = None
        start = None if response.is_success else min(limit, ERROR_BYTES)
        declared = response.headers.get("content-length", "")
        if start is None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(response, where, f"{int(declared):,}", held, seconds, most)
        if coding := response.headers.get("content-encoding"):
            inflate.once(response, where, coding)
            response.stream = inflate.Sliced(response.stream)
        pieces, total = [], 0
        for piece in response.iter_bytes():
            total += len(piece)
            if start is not None and total >= start:  # the rest left unread
                pieces.append(piece[: len(piece) - (total - start)])
                break
            if total > limit:
                raise self._too_large(response, where, f"at least {total:,}", held, seconds, most)
            if time.monotonic() > deadline:
                raise _TooLate
            pieces.append(piece)
        return b"".join(pieces)

    def _too_large(
        self,
        response: httpx.Response,
        where: str,
        size: str,
        held: int | None = None,
        seconds: float | None = None,
        most: int | None = None,
    ) -> PermanentError:
        """The answer is over its cap: ``held`` bytes for ``seconds`` of audio, the
        caller's ``most``, or (None) the endpoint's ``max_answer_bytes``."""
        if most is not None:
            return PermanentError(
                f"answer from {where} is over {most:,} bytes ({size}), more than any"
                " list of models: the server is broken or hostile; not read further",
                status=response.status_code,
            )
        if held is None or seconds is None:
            return PermanentError(
                f"answer from {where} is over {self.endpoint.max_answer_bytes:,}"
                f" bytes ({size}; max_answer_bytes)",
                status=response.status_code,
            )
        return PermanentError(
            f"answer from endpoint {self.endpoint.name!r} ({where}) is {size} bytes for"
            f" {seconds:g} s of audio, over the {held:,} any answer for it could be"
            f" ({transcript.BYTES_PER_SECOND:,} a second, {transcript.LEAST_BYTES:,} at"
            " least): the server is broken or hostile; not read further",
            status=response.status_code,
        )

    def _answer(
        self, response: httpx.Response, body: bytes, response_format: str, model: str = ""
    ) -> Transcript:
        return answers.transcript(
            response.status_code,
            response.headers,
            body,
            charset=response.charset_encoding,
            response_format=response_format,
            model=model,
            where=self.endpoint.base_url,
            scrub=self._scrub,
            now=self._clock(),
        )

    def _scrub(self, text: str) -> str:
        """Servers echo keys back in 401 messages; never let one reach a log."""
        return _scrubbed(self.endpoint, text)


class _TooLate(Exception):  # noqa: N818 - a signal between two functions, not an error
    """The request's deadline passed while its body or its answer was still moving."""


def _cause(exc: BaseException) -> str:
    """The innermost reason of an exception chain, as words."""
    inner: BaseException = exc
    while inner.__cause__ is not None or inner.__context__ is not None:
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror.lower()
    return str(inner) or inner.__class__.__name__


def _not_connected(exc: BaseException) -> str:
    """Why a connection could not be made: a name, a refusal, a route, a certificate."""
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, socket.gaierror):
            return "name does not resolve"
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused"
        if isinstance(inner, ssl.SSLCertVerificationError):
            return f"its TLS certificate is not trusted ({inner.verify_message})"
        if isinstance(inner, ssl.SSLError):
            return f"TLS handshake failed ({inner.reason or inner})"
        if isinstance(inner, OSError) and inner.errno is not None and inner.strerror:
            return inner.strerror.lower()
        inner = inner.__cause__ or inner.__context__
    return _cause(exc)


def transport_error(exc: httpx.HTTPError, ep: Endpoint, url: str) -> TranscriptionError:
    """What went wrong on the way to ``url`` of ``ep``, said so a person can act on it:
    which URL, and why (the key never quoted). The uploads' and the chat steps' alike."""
    if isinstance(exc, httpx.ConnectTimeout) and isinstance(
        exc.__cause__, resolve.Unresolved | cutoff.Late
    ):
        return OutageError(f"cannot connect to {url}: {exc}")  # the name, the bound
    proxy = cutoff.via(url)  # the connection that failed was the proxy's
    if isinstance(exc, httpx.ConnectTimeout):
        waited = f"no answer within {ep.connect_timeout:g} s"
        return OutageError(f"cannot connect to {url}{proxy}: {waited}")
    if isinstance(exc, httpx.ConnectError):
        return OutageError(f"cannot connect to {url}{proxy}: {_not_connected(exc)}")
    if isinstance(exc, httpx.ReadTimeout):
        return RetryableError(f"no answer from {url} within {ep.timeout:g} s (timeout)")
    if isinstance(exc, httpx.WriteTimeout):
        return RetryableError(f"{url} stopped taking the upload for {ep.timeout:g} s")
    if isinstance(exc, httpx.TimeoutException):  # PoolTimeout: our own slots are full
        return RetryableError(f"no free connection to {url} within {ep.timeout:g} s")
    if isinstance(exc, httpx.RemoteProtocolError):
        return RetryableError(f"{url} closed the connection before answering in full")
    if isinstance(exc, httpx.ProxyError):  # attack16: the proxy would not open the tunnel:
        said = _scrubbed(ep, str(exc))[: bodies.MAX_MESSAGE]  # never the file's fault (each
        if said.startswith("407"):  # was failed and quarantined); 407: as a refused key
            return EndpointError(f"no tunnel to {url}{proxy}: {said}", status=407)
        return OutageError(f"no tunnel to {url}{proxy}: {said}")
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"connection to {url} failed: {_scrubbed(ep, _cause(exc))}")
    return RetryableError(  # the answer could not be read (DecodingError, ...)
        f"unreadable answer from {url}: {exc.__class__.__name__}:"
        f" {_scrubbed(ep, str(exc))[: bodies.MAX_MESSAGE]}"
    )


def _scrubbed(ep: Endpoint, text: str) -> str:
    """``text`` with ``ep``'s key blanked (servers echo keys back in 401 messages)."""
    return text.replace(ep.api_key, "***") if ep.api_key else text
