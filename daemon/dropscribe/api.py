"""The httpx client for an OpenAI-compatible transcription endpoint.

The only module that touches the network and the only one that catches
``httpx`` exceptions: every failure leaves here as a RetryableError or a
PermanentError carrying the status, the request id and the server's message.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from dropscribe import __version__, kinds, models, names
from dropscribe.errors import EndpointError, PermanentError, RetryableError, TranscriptionError
from dropscribe.retry import parse_retry_after, should_retry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.config import Endpoint
    from dropscribe.rules import FolderSettings

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
QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id")
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Transcript:
    """A transcript normalised from any server's answer: text plus timed segments."""

    text: str
    language: str | None = None
    duration: float | None = None
    segments: tuple[dict[str, Any], ...] = ()
    words: tuple[dict[str, Any], ...] = ()
    request_id: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "duration": self.duration,
            "segments": list(self.segments),
            "words": list(self.words),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], request_id: str | None = None) -> Transcript:
        """Normalise an answer: vLLM's string durations, LocalAI's ``text`` for words, ..."""
        text = data.get("text")
        if not isinstance(text, str):
            raise PermanentError("answer has no text field", request_id=request_id)
        segments = []
        for index, seg in enumerate(data.get("segments") or ()):
            if isinstance(seg, dict) and "start" in seg and "end" in seg:
                item = dict(seg)
                item["id"] = index
                item["start"] = _seconds(seg["start"])
                item["end"] = _seconds(seg["end"])
                item["text"] = str(seg.get("text", ""))
                segments.append(item)
        words = []
        for word in data.get("words") or ():
            if isinstance(word, dict) and "start" in word and "end" in word:
                label = word.get("word", word.get("text", ""))
                words.append(
                    {
                        "word": str(label),
                        "start": _seconds(word["start"]),
                        "end": _seconds(word["end"]),
                    }
                )
        duration = data.get("duration")
        return cls(
            text=text.strip(),
            language=data.get("language") if isinstance(data.get("language"), str) else None,
            duration=_seconds(duration) if duration not in (None, "") else None,
            segments=tuple(segments),
            words=tuple(words),
            request_id=request_id,
        )


def _seconds(value: Any) -> float:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return 0.0


class Transcriber(Protocol):
    """What turns a file into a Transcript: an HTTP endpoint, or the local engine."""

    endpoint: Endpoint

    def transcribe(
        self,
        path: Path,
        settings: FolderSettings,
        ask: models.Ask | None = None,
        *,
        name: str | None = None,
    ) -> Transcript: ...

    def close(self) -> None: ...


class _Coalesced(httpx.SyncByteStream):
    """httpx writes a multipart body in many small pieces (64 KiB of file at most, and
    a few bytes per form field); each is a send() and a round of lock traffic. This
    joins them into blocks of ``size`` bytes, so memory stays flat and syscalls few."""

    def __init__(self, inner: Any, size: int = 1 << 20) -> None:
        self._inner = inner
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        block = bytearray()
        for piece in self._inner:
            block += piece
            if len(block) >= self._size:
                yield bytes(block)
                block.clear()
        if block:
            yield bytes(block)


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
        headers = {"User-Agent": f"dropscribe/{__version__}", **kinds.auth_headers(endpoint)}
        self._limit = kinds.upload_limit(endpoint)
        self._http = httpx.Client(
            base_url=endpoint.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(endpoint.timeout, connect=endpoint.connect_timeout),
            limits=httpx.Limits(
                max_connections=endpoint.max_concurrency,
                max_keepalive_connections=endpoint.max_concurrency,
            ),
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
        format); by default ``path``'s, which may be a ``/proc/self/fd`` path."""
        if ask is None:
            caps = models.of(self.endpoint, settings.model)
            ask = models.ask(caps, timed=settings.timed, prompt=True, seconds=None)
        request_shape = kinds.shape(self.endpoint, settings, ask)
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
                files={"file": (names.readable(name), fh, mime)},
            )
            request.stream = _Coalesced(request.stream)
            try:
                response = self._http.send(request)
            except httpx.TimeoutException as exc:
                raise RetryableError(f"timed out ({exc.__class__.__name__})") from None
            except httpx.TransportError as exc:
                raise RetryableError(f"connection failed ({exc.__class__.__name__})") from None
            except httpx.HTTPError as exc:  # the answer could not be read (DecodingError, ...)
                raise RetryableError(
                    f"unreadable answer from {self.endpoint.base_url}:"
                    f" {exc.__class__.__name__}: {self._scrub(str(exc))[:MAX_MESSAGE]}"
                ) from None
        return self._answer(response, ask.response_format)

    def _answer(self, response: httpx.Response, response_format: str) -> Transcript:
        request_id = next(
            (response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None
        )
        if response.status_code >= 400 or response.status_code < 200:
            raise self._status_error(response, request_id)
        if response_format == "text":  # the transcript itself, as plain text
            return Transcript(text=response.text.strip(), request_id=request_id)
        try:
            data = response.json()
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past reason
            raise PermanentError(
                f"answer is not JSON: {self._scrub(_snippet(response.text))}",
                status=response.status_code,
                request_id=request_id,
            ) from None
        if not isinstance(data, dict):
            raise PermanentError("answer is not a JSON object", request_id=request_id)
        return Transcript.from_json(data, request_id)

    def _status_error(self, response: httpx.Response, request_id: str | None) -> TranscriptionError:
        message, code, param = _error_message(response)
        status = response.status_code
        retry_after = parse_retry_after(response.headers, self._clock())
        cls: type[TranscriptionError]
        if status in {401, 403, 404} or (status == 429 and code in QUOTA_CODES):
            cls = EndpointError
        elif should_retry(status, response.headers):
            cls = RetryableError
        else:
            cls = PermanentError
        return cls(
            f"HTTP {status}: {self._scrub(message)}",
            status=status,
            request_id=request_id,
            code=code,
            retry_after=retry_after,
            param=param,
        )

    def _scrub(self, text: str) -> str:
        """Servers echo keys back in 401 messages; never let one reach a log."""
        key = self.endpoint.api_key
        return text.replace(key, "***") if key else text


def _snippet(text: str) -> str:
    """A short, single-line excerpt of a body that may be HTML."""
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        text = title.group(1)
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:MAX_MESSAGE] or "(empty body)"


def _error_message(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """The message, code and named parameter of an error body in any shape servers use."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _snippet(response.text), None, None
    code: str | None = None
    param: str | None = None
    message: Any = body
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(error, dict):
            raw_code = error.get("code") or error.get("type")
            code = str(raw_code) if raw_code is not None else None
            param = error.get("param") if isinstance(error.get("param"), str) else None
            message = error.get("message", error)
        else:
            message = error
    if not isinstance(message, str):
        message = json.dumps(message)
    return " ".join(message.split())[:MAX_MESSAGE], code, param
