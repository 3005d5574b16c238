"""structlog set-up: JSON lines for machines, the console renderer on a TTY.

Under systemd, when stderr is the journal's stream (``JOURNAL_STREAM`` names its device
and inode), each line starts with its syslog priority (``<3>`` for an error), which
journald takes off and keeps as the entry's ``PRIORITY`` (``SyslogLevelPrefix=``, on
by default): ``journalctl -u dropscribe -p err`` lists the errors.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Protocol, TextIO, cast

import structlog

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


# syslog(3) priorities of structlog's levels
PRIORITIES = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}


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


def _prioritised(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    def render(logger: Any, name: str, event: Any) -> Any:
        level = event.get("level", name) if isinstance(event, dict) else name
        line = renderer(logger, name, event)
        prefix = f"<{PRIORITIES.get(level, 6)}>"
        return prefix + line if isinstance(line, str) else line

    return render


def to_journal(stream: Stream) -> bool:
    """Whether ``stream`` is the journal's own stream (systemd's JOURNAL_STREAM)."""
    said = os.environ.get("JOURNAL_STREAM", "")
    fileno = getattr(stream, "fileno", None)
    if not said or fileno is None:
        return False
    try:
        st = os.fstat(fileno())
    except (OSError, ValueError):
        return False
    return said == f"{st.st_dev}:{st.st_ino}"


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
    renderer = _scrubbed(renderer)
    if to_journal(out):
        renderer = _prioritised(renderer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(cast("TextIO", out)),
        cache_logger_on_first_use=final,
    )
