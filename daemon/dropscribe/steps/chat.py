"""One request to an OpenAI-compatible ``POST {base_url}/chat/completions`` (PROTOCOL.md
7.4), sent and its answer read within the endpoint's timeout and size cap; every failure
leaves as one of ours (errors.py). What a status means is ``transcribe/answers.py``'s, as
for uploads; retries, the breaker and learned refusals are ``calls.py``'s."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from dropscribe import __version__
from dropscribe.errors import (
    ContextTooLong,
    PermanentError,
    RetryableError,
    TranscriptionError,
)
from dropscribe.transcribe import answers, bodies, cutoff, http, kinds

if TYPE_CHECKING:
    from dropscribe.vocab.endpoints import Endpoint

# "This model's maximum context length is 8192 tokens. However, ..." (OpenAI), and the
# shapes of vLLM ("maximum context length is 4096 tokens") and llama.cpp ("n_ctx: 4096").
CONTEXT = re.compile(r"(?:maximum context length is|context length of|n_ctx\D{0,3})\s*(\d{3,9})")


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int


class ChatClient:
    """Sends chat completions to one endpoint over a keep-alive pool."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        headers = {"User-Agent": f"dropscribe/{__version__}", **kinds.auth_headers(endpoint)}
        limits = httpx.Limits(
            max_connections=endpoint.max_concurrency,
            max_keepalive_connections=endpoint.max_concurrency,
        )
        if transport is None:  # kept-alive connections a deadline can cut, as uploads have
            transport = cutoff.transport(endpoint.base_url, limits)
        self._http = httpx.Client(
            base_url=endpoint.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(endpoint.timeout, connect=endpoint.connect_timeout),
            limits=limits,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ChatClient(endpoint={self.endpoint.name!r})"

    def close(self) -> None:
        self._http.close()

    def complete(self, body: dict[str, Any]) -> Answer:
        """One completion, or raise (ContextTooLong: the request is over the context)."""
        url = f"{self.endpoint.base_url}/chat/completions"
        with cutoff.deadline(self.endpoint.timeout) as cut:
            request = self._http.build_request(
                "POST", "chat/completions", json=body, extensions={"trace": cut.trace}
            )
            try:
                response = self._http.send(request, stream=True)
                try:
                    raw = self._read(response, url)
                    cut.release()  # before the connection goes back to the pool
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                raise self._failure(exc, url, cut=cut.done) from None
        if cut.done:  # the answer's end may be the cut's (an answer without a length)
            raise self._failure(httpx.ReadTimeout("cut"), url, cut=True)
        return self._answer(response, raw, str(body.get("model", "")))

    def _failure(self, exc: httpx.HTTPError, url: str, *, cut: bool) -> TranscriptionError:
        """One of ours for what httpx raised (``cut``: the deadline closed the socket)."""
        if cut or isinstance(exc, httpx.ReadTimeout):
            return RetryableError(
                f"no complete answer from {url} within {self.endpoint.timeout:g} s"
            )
        return http.transport_error(exc, self.endpoint, url)

    def _read(self, response: httpx.Response, url: str) -> bytes:
        """The body within max_answer_bytes (a hostile server must not fill memory; the
        deadline's cut ends one that does not end)."""
        limit = self.endpoint.max_answer_bytes
        pieces, total = [], 0
        for piece in response.iter_bytes():
            total += len(piece)
            if total > limit:
                raise PermanentError(
                    f"answer from {url} is over {limit:,} bytes (max_answer_bytes)"
                )
            pieces.append(piece)
        return b"".join(pieces)

    def _answer(self, response: httpx.Response, raw: bytes, model: str) -> Answer:
        status, headers = response.status_code, response.headers
        if not 200 <= status < 300:
            rid = answers.request_id(headers)
            error = answers.error(
                status, headers, raw, rid, scrub=self._scrub, now=time.time(), model=model
            )
            if status in {400, 413} and _context(error):
                found = CONTEXT.search(error.message)
                raise ContextTooLong(
                    error.message,
                    int(found.group(1)) if found else None,
                    status=status,
                    code=error.code,
                )
            raise error
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"]["content"]
        except (ValueError, RecursionError, KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):  # null, a number, a list: not an answer to use
            snippet = bodies.snippet(self._scrub(bodies.decoded(raw, response.charset_encoding)))
            raise PermanentError(
                f"answer is not a chat completion: {snippet}", status=status
            ) from None
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        finish = choice.get("finish_reason")
        return Answer(
            text,
            finish if isinstance(finish, str) and finish else "stop",
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
        )

    def _scrub(self, text: str) -> str:
        key = self.endpoint.api_key
        return text.replace(key, "***") if key else text


def _count(value: object) -> int:
    """A token count as the answer gives it; anything but a whole number is 0."""
    return value if isinstance(value, int) and 0 <= value < 1 << 62 else 0


def _context(error: TranscriptionError) -> bool:
    return error.code == "context_length_exceeded" or "context length" in error.message.lower()
