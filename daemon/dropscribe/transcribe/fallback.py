"""Several endpoints per folder, the uploader's side. While a file has another endpoint to
go to (inside ``turn``), an endpoint that cannot take it is not waited for: where the
uploader would wait (its breaker open, its model gone) or try again after an outage, it
raises ``PassedOver`` instead, after the usual bookkeeping (the breaker counts the failure,
the pair is marked gone). Which endpoint comes next is ``jobs/cascade.py``'s.

Why an endpoint is unusable, in the words ``file.fallback`` and ``explain`` use:

- ``down``: no connection, or the server busy (429 rate limit, 502, 503, 504)
- ``quota``: out of quota or credit (429 ``insufficient_quota`` and kin, or 402)
- ``gone``: the folder's model is no longer served there
- ``refused``: the key or the model refused (401, 403, 404)
- ``slow``: no (complete) answer within the endpoint's ``timeout:``; passed over at the
  first, as an outage is (the next endpoint need not wait for the slow one's retries)
- ``paused``: its breaker is open after failures of earlier files (the last one's why)
"""

from __future__ import annotations

import contextlib
import threading
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from dropscribe.errors import ModelGone, PassedOver, RetryableError
from dropscribe.transcribe.answers import QUOTA_CODES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.errors import TranscriptionError


class Reasons:
    """Thread-safe: why each endpoint was last found unusable (for a pause's ``why``)."""

    def __init__(self) -> None:
        self._why: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def note(self, endpoint: str, why: str, message: str) -> None:
        with self._lock:
            self._why[endpoint] = (why, message)

    def last(self, endpoint: str) -> tuple[str, str] | None:
        with self._lock:
            return self._why.get(endpoint)


OUTAGES = ("down", "slow")  # the endpoint's, not the file's: a patient turn waits them out

_TURN: ContextVar[tuple[Reasons, bool] | None] = ContextVar("dropscribe_fallback", default=None)


@contextlib.contextmanager
def turn(reasons: Reasons, *, patient: bool = False) -> Iterator[None]:
    """The block's uploads (in this thread and its chunks') have another endpoint to go
    to. ``patient``: the endpoint is waited for while it is paused or down, as a folder
    with one endpoint waits; only its refusal of this file (quota, gone, key) ends it."""
    token = _TURN.set((reasons, patient))
    try:
        yield
    finally:
        _TURN.reset(token)


def why(failure: TranscriptionError) -> str:
    """The word for what ``failure`` says of its endpoint (see the module)."""
    if isinstance(failure, ModelGone):
        return "gone"
    if failure.status == 402 or (failure.status == 429 and failure.code in QUOTA_CODES):
        return "quota"
    if isinstance(failure, RetryableError) or failure.status is None:
        return "down"
    return "refused"


def failed(endpoint: str, failure: TranscriptionError, *, slow: bool = False) -> None:
    """Inside a turn: ``PassedOver``, since ``failure`` answered this file's request
    (``slow``: no answer came within the endpoint's timeout); its cause is ``failure``."""
    now = _TURN.get()
    if now is None:
        return
    reasons, patient = now
    said = "slow" if slow and not getattr(failure, "outage", False) else why(failure)
    if patient and said in OUTAGES:
        return
    reasons.note(endpoint, said, failure.message)
    raise PassedOver(endpoint, said, failure.message, sent=True) from failure


def waiting(endpoint: str, fallback: str, message: str, wait: float | None = None) -> None:
    """Inside a turn: ``PassedOver`` instead of waiting for ``endpoint`` (nothing was sent);
    ``fallback``/``message``: the why when no failure of it was seen by this process;
    ``wait``: seconds until it may be tried again (wake15: its ``until``), if known."""
    now = _TURN.get()
    if now is None or now[1]:
        return
    until = None if wait is None else time.time() + wait
    last = now[0].last(endpoint)
    if last is None:
        raise PassedOver(endpoint, fallback, message, sent=False, until=until)
    said = fallback if last[0] == fallback else f"{fallback} ({last[0]})"
    raise PassedOver(endpoint, said, last[1], sent=False, until=until)
