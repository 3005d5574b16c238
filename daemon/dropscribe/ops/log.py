"""structlog set-up: JSON lines for machines, the console renderer on a TTY."""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol, TextIO, cast

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _jsonable(value: Any) -> Any:
    return str(value)


_state = {"debug": False}
_secrets: set[str] = set()
SECRET_SHORTEST = 8  # a shorter "key" would blank out ordinary words


def hide(*secrets: str | None) -> None:
    """Never print these (API keys): every rendered event line has them as ``***``,
    whichever field carries them (a server's message, a hook's output, a traceback)."""
    _secrets.update(s for s in secrets if s and len(s) >= SECRET_SHORTEST)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _scrubbed(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    def render(logger: Any, name: str, event: Any) -> Any:
        line = renderer(logger, name, event)
        return scrub(line) if _secrets and isinstance(line, str) else line

    return render


def debugging() -> bool:
    """Whether debug events are kept: skip building ones that would be dropped anyway."""
    return _state["debug"]


class Stream(Protocol):
    """Where events go: a text file, or anything that writes like one (the progress bar)."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


def configure(
    fmt: str = "auto", level: str = "info", stream: Stream | None = None, *, final: bool = False
) -> None:
    """Route every event to ``stream`` (stderr by default) in the chosen format.

    ``final``: this process never configures logging again (the daemon, whose ``log:``
    is restart-only, and its worker processes), so each logger is built once rather
    than at every event.
    """
    _state["debug"] = level == "debug"
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(default=_jsonable, ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrubbed(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(cast("TextIO", out)),
        cache_logger_on_first_use=final,
    )
