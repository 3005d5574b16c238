"""structlog set-up: JSON lines for machines, the console renderer on a TTY.

Under systemd, when stderr is the journal's stream (``JOURNAL_STREAM`` names its device
and inode), each line starts with its syslog priority (``<3>`` for an error), which
journald takes off and keeps as the entry's ``PRIORITY`` (``SyslogLevelPrefix=``, on
by default): ``journalctl -u dropscribe -p err`` lists the errors.

What libraries say goes the same way, so that every line is in the configured format:
Python ``logging`` records of warning and above (faster-whisper's "The current model is
English-only ...") as ``library.logged``, ``warnings`` as ``python.warning``, and an
exception no thread caught as ``thread.crashed`` with its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, Protocol, TextIO, cast

import structlog

from dropscribe import names

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping
    from types import TracebackType

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


# long18: the longest text an event field shows (twice PATH_MAX: a file's path whole);
# longer is cut with "…". A config value of 200,000 characters (a model:, a URL) was
# echoed whole in every event that named it. A traceback (``exception``) is not cut.
LONGEST_FIELD = 8192


def _bounded(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = cut(value, LONGEST_FIELD)
        elif isinstance(value, list | tuple):
            event[key] = [cut(v, LONGEST_FIELD) if isinstance(v, str) else v for v in value]
    return event


def cut(text: str, longest: int) -> str:
    """``text``, or its first ``longest - 1`` characters and "…"."""
    return text if len(text) <= longest else text[: longest - 1] + "…"


def hide(*secrets: str | None) -> None:
    """Never print these (API keys): every rendered event line has them as ``***``,
    whichever field carries them (a server's message, a hook's output, a traceback)."""
    _secrets.update(s for s in secrets if s and len(s) >= SECRET_SHORTEST)


def scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _visible(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """attack21: on the console, each text field with its control and format characters
    shown as ``\\xNN``/``\\uNNNN`` (``names.shown``; a traceback keeps its lines): a file's
    name dropped by another user into a shared inbox (``ESC ] 0 ;`` sets the title, OSC
    52 the clipboard) was carried out by the admin's terminal."""
    for key, value in event.items():
        if isinstance(value, str):
            lines = value.split("\n") if key == "exception" else [value]
            event[key] = "\n".join(names.shown(line) for line in lines)
        elif isinstance(value, list | tuple):
            event[key] = [names.shown(v) if isinstance(v, str) else v for v in value]
    return event


def _json_visible(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    """attack21: a JSON line (``ensure_ascii`` off, for readable names) with what is not
    printable (C1 controls, U+009B is CSI; bidi overrides; lone surrogates) as ``\\uNNNN``
    escapes, which JSON reads back as the very characters (they only occur in strings)."""

    def render(logger: Any, name: str, event: Any) -> Any:
        line = renderer(logger, name, event)
        if not isinstance(line, str) or line.isprintable():
            return line
        return "".join(ch if ch.isprintable() else _escaped(ch) for ch in line)

    return render


def _escaped(ch: str) -> str:
    """``ch`` as a JSON escape (past U+FFFF, the pair of surrogates JSON spells it with)."""
    return json.dumps(ch)[1:-1] if ord(ch) > 0xFFFF else f"\\u{ord(ch):04x}"


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


# Back to the line's start and clear it: a line written while ``once``'s bar is the
# terminal's last line (by a worker process, which cannot see the bar) replaces the bar
# rather than running on from its end; the main process draws the bar again.
CLEAR = "\r\x1b[2K"


def _own_line(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    def render(logger: Any, name: str, event: Any) -> Any:
        line = renderer(logger, name, event)
        return CLEAR + line if isinstance(line, str) else line

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


class _Lossy:
    """``stream``, whose failures are the events' and never the daemon's (attack22:
    with ``run 2>&1 | head`` or a killed ``tee``, the next event's BrokenPipeError ended
    the daemon in ``daemon.crashed``). Once the reader is gone (EPIPE, or the stream was
    closed) nothing more is written; any other failure loses the one event."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str, /) -> int:
        return self._do(lambda: self._stream.write(text)) or 0

    def flush(self) -> None:
        self._do(self._stream.flush)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def _do(self, act: Callable[[], Any]) -> Any:
        if self._gone:
            return None
        try:
            return act()
        except UnicodeError:  # a text the stream's encoding cannot take: this event lost
            pass
        except (BrokenPipeError, ValueError):  # ValueError: written after it was closed
            self._gone = True
        except OSError:  # a full disk under a redirect, an EAGAIN: this event is lost
            pass
        return None


class _Forwarded(logging.Handler):
    """Python ``logging`` (the libraries') as events of ours: ``library.logged``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a library's own formatting mistake
            message = str(record.msg)
        level = record.levelname.lower() if record.levelname.lower() in LEVELS else "error"
        fields: dict[str, Any] = {"logger": record.name, "message": message}
        if record.exc_info:
            fields["exc_info"] = record.exc_info
        getattr(structlog.get_logger("dropscribe"), level)("library.logged", **fields)


def _warned(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,  # noqa: ARG001 - the event goes where every event goes
    line: str | None = None,  # noqa: ARG001
) -> None:
    structlog.get_logger("dropscribe").warning(
        "python.warning",
        category=category.__name__,
        message=str(message),
        where=f"{filename}:{lineno}",
    )


def _thread_crashed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    _crashed(args.exc_type, args.exc_value, args.exc_traceback, args.thread)


def _crashed(
    kind: type[BaseException],
    error: BaseException,
    trace: TracebackType | None,
    thread: threading.Thread | None = None,
) -> None:
    structlog.get_logger("dropscribe").error(
        "thread.crashed",
        thread=thread.name if thread is not None else threading.current_thread().name,
        exc_info=(kind, error, trace),
    )


def _libraries(level: str) -> None:
    """Python logging, warnings and uncaught exceptions rendered as our events."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Forwarded)]:
        root.removeHandler(handler)
    root.addHandler(_Forwarded())
    root.setLevel(max(logging.WARNING, LEVELS[level]))  # libraries' info is their chatter
    warnings.showwarning = _warned
    threading.excepthook = _thread_crashed
    sys.excepthook = _crashed


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
    renderer = _scrubbed(_json_visible(renderer) if use_json else renderer)
    if not use_json and out.isatty():
        renderer = _own_line(renderer)
    if to_journal(out):
        renderer = _prioritised(renderer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _bounded,
            structlog.processors.format_exc_info,
            *([] if use_json else [_visible]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(cast("TextIO", _Lossy(out))),
        cache_logger_on_first_use=final,
    )
    _libraries(level)
