"""Pure: what a server's answer body says, whatever its shape: an error's message, code
and named parameter (OpenAI's error object, FastAPI's and Mistral's detail lists,
faster-whisper-server's detail.error, plain text, an HTML page), and text in the
charset it names. Every pattern here reads each character a bounded number of times."""

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


def decoded(body: bytes, charset: str | None) -> str:
    """The body as text in the charset it names; UTF-8 where it names none we know
    (or no text encoding at all, such as ``base64``)."""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


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
    return " ".join(text.split())[:MAX_MESSAGE] or "(empty body)"


def error_message(raw: bytes, scrub: Callable[[str], str]) -> tuple[str, str | None, str | None]:
    """The message, code and named parameter of an error body in any shape servers use;
    ``scrub`` runs before anything is shortened, so no prefix of a secret survives."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return snippet(scrub(raw.decode("utf-8", "replace"))), None, None
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
        locs = [".".join(str(p) for p in d.get("loc", ())) for d in message]
        message = "; ".join(
            f"{loc}: {d['msg']}" if loc else str(d["msg"])
            for loc, d in zip(locs, message, strict=True)
        )
    if not isinstance(message, str):
        message = json.dumps(message)
    return " ".join(clean_text(scrub(message)).split())[:MAX_MESSAGE], code, param
