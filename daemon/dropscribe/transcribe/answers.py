"""Pure: what an endpoint's answer means (PROTOCOL.md sections 2 to 4): a transcript, or
which of our errors, from its status, headers and body. The policy of retrying starts
here (which statuses are worth another try, which are the endpoint's and never the
file's); sending the request and reading its answer are ``http.py``'s."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dropscribe.errors import (
    EndpointError,
    ModelGone,
    OutageError,
    PermanentError,
    RetryableError,
    TranscriptionError,
)
from dropscribe.transcribe import bodies, refusals
from dropscribe.transcribe.backoff import parse_retry_after, should_retry
from dropscribe.transcript import Transcript, clean_text

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id")
OUTAGE_STATUSES = frozenset({429, 502, 503, 504})  # the server is busy or its upstream gone


def request_id(headers: Mapping[str, str]) -> str | None:
    return next((headers[h] for h in REQUEST_ID_HEADERS if h in headers), None)


def transcript(  # noqa: PLR0913 - the answer's parts, all keywords after the first
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    charset: str | None,
    response_format: str,
    model: str,
    where: str,
    scrub: Callable[[str], str],
    now: float,
) -> Transcript:
    """The transcript an answer carries, or the error it is (``where``: the base URL)."""
    rid = request_id(headers)
    if 300 <= status < 400:  # never followed: the key would go wherever it points
        location = headers.get("location", "(no Location)")
        raise EndpointError(
            f"HTTP {status}: {where} redirects to {location[:200]};"
            " set base_url to where it points (redirects are not followed)",
            status=status,
            request_id=rid,
        )
    if not 200 <= status < 300:
        raise error(status, headers, body, rid, scrub=scrub, now=now, model=model)
    if response_format == "text":  # the transcript itself, as plain text
        text = bodies.decoded(body, charset).strip()
        return Transcript(text=clean_text(text), request_id=rid)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past reason
        text = bodies.decoded(body, charset)
        raise PermanentError(
            f"answer is not JSON: {bodies.snippet(scrub(text))}",
            status=status,
            request_id=rid,
        ) from None
    if not isinstance(data, dict):
        raise PermanentError("answer is not a JSON object", status=status, request_id=rid)
    return Transcript.from_answer(data, rid)


def error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    rid: str | None,
    *,
    scrub: Callable[[str], str],
    now: float,
    model: str = "",
) -> TranscriptionError:
    """The error an unsuccessful answer is: the model gone, the endpoint unusable, worth
    another try (an outage, or the file's), or the same every time."""
    message, code, param = bodies.error_message(body, scrub)
    cls: type[TranscriptionError]
    if refusals.gone(status, code, message, model):
        cls = ModelGone
    # attack16: 407, a proxy refusing its credentials (HTTP_PROXY's), is no file's fault:
    # as a refused key, every file was failed and quarantined
    elif status in {401, 402, 403, 404, 407} or (status == 429 and code in QUOTA_CODES):
        cls = EndpointError
    elif should_retry(status, headers):
        cls = OutageError if status in OUTAGE_STATUSES else RetryableError
    else:
        cls = PermanentError
    return cls(
        f"HTTP {status}: {message}",
        status=status,
        request_id=rid,
        code=code,
        retry_after=parse_retry_after(headers, now),
        param=param,
    )
