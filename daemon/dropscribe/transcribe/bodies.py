"""Pure: what a server's answer body says, whatever its shape: an error's message, code
and named parameter (OpenAI's error object, FastAPI's and Mistral's detail lists,
faster-whisper-server's detail.error, plain text, an HTML page), and text in the
charset it names. Every pattern here reads each character a bounded number of times, and
what leaves here is one line every ledger can keep (no NUL, no lone surrogate)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from dropscribe.transcript import clean_text

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_MESSAGE = 300
SCANNED = 64 * 1024  # characters of an error body looked at: the title or the first words
TITLE = re.compile(r"<title[^<>]*>([^<]*)<", re.IGNORECASE)
TAG = re.compile(r"<[^<>]*>")
# attack22: control characters (C0, DEL, C1) but the whitespace that split() takes: a NUL
# in an error body's text ended the job in a LedgerError on PostgreSQL (its text refuses
# NUL), a 503's outage counted as the file's crash
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def decoded(body: bytes, charset: str | None) -> str:
    """The body as text in the charset it names; UTF-8 where it names none we know
    (or no text encoding at all, such as ``base64``), or one that cannot decode with
    replacements (attack22: ``idna``, ``undefined`` raise UnicodeError whatever the bytes:
    a 200 naming one ended the job as a crash of ours)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except (LookupError, UnicodeError):
        return body.decode("utf-8", errors="replace")


def line(text: str, longest: int = MAX_MESSAGE) -> str:
    """``text`` as one line of at most ``longest`` characters that any ledger can keep:
    whitespace runs as one space, control characters and lone surrogates as U+FFFD. Only
    its first ``SCANNED`` characters are looked at (split() made an object of each word
    of a megabyte's message)."""
    return CONTROL.sub("\ufffd", " ".join(clean_text(text[:SCANNED]).split())[:longest])


def snippet(text: str) -> str:
    """A short, single-line excerpt of a body that may be HTML (already scrubbed).

    The body is cut to ``SCANNED`` characters before any pattern looks at it, and the
    patterns are linear: no ``<`` inside a tag or a title, so each character is read a
    bounded number of times (a megabyte of ``<`` took minutes with ``<[^>]+>``)."""
    text = text[:SCANNED]
    title = TITLE.search(text)
    if title:
        text = title.group(1)
    text = TAG.sub(" ", text)
    return line(text) or "(empty body)"


def error_message(raw: bytes, scrub: Callable[[str], str]) -> tuple[str, str | None, str | None]:
    """The message, code and named parameter of an error body in any shape servers use;
    ``scrub`` runs before anything is shortened, so no prefix of a secret survives. Each
    of the three is ``line``'s: a server's NUL or lone surrogate never reaches a ledger."""
    try:
        message, code, param = _said(json.loads(raw))
    except (ValueError, RecursionError):  # not JSON, or nested past what can be walked
        return snippet(scrub(raw.decode("utf-8", "replace"))), None, None
    return (
        line(scrub(message)),
        None if code is None else line(code),
        None if param is None else line(param),
    )


def _said(body: Any) -> tuple[str, str | None, str | None]:
    """The message, code and parameter of a parsed error body, as they came."""
    code: str | None = None
    param: str | None = None
    message: Any = body
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(error, dict):
            raw_code = error.get("code") or error.get("type")
            code = str(raw_code) if raw_code is not None else None
            param = error.get("param") if isinstance(error.get("param"), str) else None
            # faster-whisper-server: {"detail": {"error": "..."}}; OpenAI: "message"
            said = error.get("message", error.get("error"))
            message = said if isinstance(said, str | list) else error
        else:
            message = error
    if isinstance(message, dict) and isinstance(message.get("detail"), list):
        message = message["detail"]  # Mistral: pydantic's detail inside its error object
    if isinstance(message, list) and all(isinstance(d, dict) and "msg" in d for d in message):
        # FastAPI and Mistral validation: "body.audio_file: Field required; …"
        locs = [_where(d.get("loc")) for d in message]
        message = "; ".join(
            f"{loc}: {d['msg']}" if loc else str(d["msg"])
            for loc, d in zip(locs, message, strict=True)
        )
    if not isinstance(message, str):
        message = json.dumps(message)
    return message, code, param


def _where(loc: Any) -> str:
    """A validation error's ``loc`` as ``body.file``: a list, as FastAPI sends it; any
    other value as its text, none for null (attack22: ``"loc": null`` or ``5`` ended the
    job in a TypeError, a crash of ours, whatever the status said)."""
    if isinstance(loc, list):
        return ".".join(str(part) for part in loc)
    return "" if loc is None else str(loc)
