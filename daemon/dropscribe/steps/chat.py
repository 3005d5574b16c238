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
from dropscribe.errors import OutageError, PermanentError, RetryableError, TranscriptionError
from dropscribe.transcribe import answers, bodies, kinds

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


class ContextTooLong(PermanentError):  # noqa: N818 - named for what the request is
    """The request is over the model's context; ``tokens`` is the limit it named (if any)."""

    def __init__(self, message: str, tokens: int | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.tokens = tokens


class ChatClient:
    """Sends chat completions to one endpoint over a keep-alive pool."""

    def __init__(self, endpoint: Endpoint, *, transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint
        headers = {"User-Agent": f"dropscribe/{__version__}", **kinds.auth_headers(endpoint)}
        self._http = httpx.Client(
            base_url=endpoint.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(endpoint.timeout, connect=endpoint.connect_timeout),
            limits=httpx.Limits(max_connections=endpoint.max_concurrency),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"ChatClient(endpoint={self.endpoint.name!r})"

    def close(self) -> None:
        self._http.close()

    def complete(self, body: dict[str, Any]) -> Answer:
        """One completion, or raise (ContextTooLong: the request is over the context)."""
        url = f"{self.endpoint.base_url}/chat/completions"
        deadline = time.monotonic() + self.endpoint.timeout
        request = self._http.build_request("POST", "chat/completions", json=body)
        try:
            response = self._http.send(request, stream=True)
            try:
                raw = self._read(response, deadline, url)
            finally:
                response.close()
        except httpx.ConnectError as exc:
            raise OutageError(f"cannot connect to {url}: {exc}") from None
        except httpx.ConnectTimeout:
            raise OutageError(f"cannot connect to {url}: no answer in time") from None
        except httpx.TimeoutException:
            raise RetryableError(
                f"no answer from {url} within {self.endpoint.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise RetryableError(f"connection to {url} failed: {exc.__class__.__name__}") from None
        return self._answer(response, raw, str(body.get("model", "")))

    def _read(self, response: httpx.Response, deadline: float, url: str) -> bytes:
        """The body within the deadline and max_answer_bytes (a hostile server must not pin
        a worker or fill memory)."""
        limit = self.endpoint.max_answer_bytes
        pieces, total = [], 0
        for piece in response.iter_bytes():
            total += len(piece)
            if total > limit:
                raise PermanentError(
                    f"answer from {url} is over {limit:,} bytes (max_answer_bytes)"
                )
            if time.monotonic() > deadline:
                raise RetryableError(
                    f"no complete answer from {url} within {self.endpoint.timeout:g} s"
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
            usage = data.get("usage") or {}
            return Answer(
                text if isinstance(text, str) else "",
                str(choice.get("finish_reason") or "stop"),
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
            )
        except (ValueError, RecursionError, KeyError, IndexError, TypeError):
            snippet = bodies.snippet(self._scrub(bodies.decoded(raw, response.charset_encoding)))
            raise PermanentError(
                f"answer is not a chat completion: {snippet}", status=status
            ) from None

    def _scrub(self, text: str) -> str:
        key = self.endpoint.api_key
        return text.replace(key, "***") if key else text


def _context(error: TranscriptionError) -> bool:
    return error.code == "context_length_exceeded" or "context length" in error.message.lower()
