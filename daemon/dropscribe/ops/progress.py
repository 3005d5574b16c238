"""How far a long transcription is: ``file.progress`` events, and ``once``'s bar.

A fresh transcription runs inside a ``Told`` (``jobs/plan.py``). An engine that knows
how far it is says so with ``at()`` (the local engine: the end of the last segment, or
the start of the batch it is on) or ``chunk_done()`` (chunked uploads); from the first
such word, a thread of the ``Told`` logs ``file.progress`` every ``INTERVAL`` seconds
until the transcription ends (with the file's ``path`` from the job's context, the
seconds done, the recording's seconds and the percentage), so a long file is never
silent for longer. An upload sent whole says nothing: there is nothing to count.

On a terminal, ``once`` draws a bar as the last line. A log line clears it, is written
on its own line, and the bar is drawn again below it; the summary replaces it at the
end. The bar fills with the files finished plus the part done of those in progress,
whose percentages follow the file count.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TextIO

import structlog

from dropscribe import names
from dropscribe.ops.log import CLEAR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from types import TracebackType

    from dropscribe.jobs.job import Tally
    from dropscribe.vocab.config import Config

log = structlog.get_logger("dropscribe")

WIDTH = 30
SHOWN_FILES = 3  # files in progress whose percentage the bar names

ENVIRONMENT = "DROPSCRIBE_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0


def interval_from(environ: Mapping[str, str]) -> float:
    """Seconds between two ``file.progress`` events of one file: ``DROPSCRIBE_PROGRESS_SECONDS``
    when it is a positive number, else 30."""
    try:
        seconds = float(environ.get(ENVIRONMENT) or DEFAULT_SECONDS)
    except ValueError:
        return DEFAULT_SECONDS
    return seconds if 0 < seconds < math.inf else DEFAULT_SECONDS


INTERVAL = interval_from(os.environ)  # read once, when the daemon starts

# The bar, while it is drawn: (which transcription, its file's name, the part done or
# None when it ended).
_listeners: list[Callable[[int, str, float | None], None]] = []
_current: contextvars.ContextVar[Told | None] = contextvars.ContextVar(
    "dropscribe_told", default=None
)


class Told:
    """One fresh transcription's progress, said every ``interval`` seconds once an
    engine has said how far it is. A context manager: its thread ends with the block."""

    def __init__(self, total: float | None, *, interval: float | None = None) -> None:
        self.total = total if total and total > 0 else None  # the recording's seconds
        self.done = 0.0  # seconds of it transcribed
        self.chunks: int | None = None  # chunked: how many, and how many are done
        self.chunks_done = 0
        self._interval = interval or INTERVAL
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context = contextvars.copy_context()  # the job's: its path, its inbox
        self._token: contextvars.Token[Told | None] | None = None
        self._name = Path(str(structlog.contextvars.get_contextvars().get("path", ""))).name

    def __enter__(self) -> Self:
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._token is not None:
            _current.reset(self._token)
        for listener in [*_listeners]:  # the bar may go meanwhile
            listener(id(self), self._name, None)

    def at(self, seconds: float) -> None:
        """The transcription is ``seconds`` into the recording (never goes back)."""
        with self._lock:
            self.done = max(self.done, seconds)
        self._heard()

    def planned(self, chunks: int, total: float, reused: list[float]) -> None:
        """Chunked: ``chunks`` in all over ``total`` seconds of audio; ``reused``, the
        seconds of each chunk a run before this one transcribed."""
        with self._lock:
            self.chunks, self.chunks_done, self.done = chunks, len(reused), sum(reused)
            self.total = self.total or total or None
        self._heard()

    def chunk_done(self, seconds: float) -> None:
        """Chunked: one more chunk, ``seconds`` long, is transcribed."""
        with self._lock:
            self.chunks_done += 1
            self.done += seconds
        self._heard()

    def fields(self) -> dict[str, Any]:
        """What a ``file.progress`` event says."""
        with self._lock:
            done = min(self.done, self.total) if self.total else self.done
            said: dict[str, Any] = {"done_seconds": round(done, 1)}
            if self.total:
                said["total_seconds"] = round(self.total, 1)
                said["percent"] = math.floor(100 * done / self.total)
            if self.chunks is not None:
                said["chunks_done"], said["chunks"] = self.chunks_done, self.chunks
            return said

    def part(self) -> float | None:
        """The part done, 0 to 1; None while the recording's length is unknown."""
        with self._lock:
            if self.total:
                return min(1.0, self.done / self.total)
            return self.chunks_done / self.chunks if self.chunks else None

    def _heard(self) -> None:
        """The engine said where it is: start telling (once), and show it on the bar."""
        with self._lock:
            start = self._thread is None and not self._stop.is_set()
            if start:
                self._thread = threading.Thread(
                    target=self._context.run,
                    args=(self._tell,),
                    name="dropscribe-progress",
                    daemon=True,  # like the worker it reports on: a stop may leave both
                )
                self._thread.start()
        part = self.part()
        if part is not None:
            for listener in [*_listeners]:  # the bar may go meanwhile
                listener(id(self), self._name, part)

    def _tell(self) -> None:
        while not self._stop.wait(self._interval):
            log.info("file.progress", **self.fields())


def at(seconds: float) -> None:
    """The current transcription is ``seconds`` into its recording (if one is told)."""
    told = _current.get()
    if told is not None:
        told.at(seconds)


def planned(chunks: int, total: float, reused: list[float]) -> None:
    """The current transcription goes in chunks (``Told.planned``)."""
    told = _current.get()
    if told is not None:
        told.planned(chunks, total, reused)


def chunk_done(seconds: float) -> None:
    """One more chunk of the current transcription is done (``Told.chunk_done``)."""
    told = _current.get()
    if told is not None:
        told.chunk_done(seconds)


def along(segments: Iterable[Any]) -> Iterator[Any]:
    """Each segment as it is, the current transcription placed at its ``end``."""
    for segment in segments:
        at(segment.end)
        yield segment


def _columns(out: TextIO) -> int | None:
    """The terminal's width, None when it does not say."""
    try:
        return os.get_terminal_size(out.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        return None


class Bar:
    """A stream for the log (``write``) that also draws the bar (``draw``), and hears
    how far the files in progress are (``Told``) while it is drawn."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._line = ""
        self._counts = (0, 0, 0)
        self._parts: dict[int, tuple[str, float]] = {}
        self._lock = threading.RLock()  # worker threads draw too
        _listeners.append(self.heard)

    def isatty(self) -> bool:
        return self._out.isatty()

    def write(self, text: str) -> int:
        """A log line (which clears the bar's line itself: ``log._own_line``), then the bar."""
        with self._lock:
            self._out.write(f"{text}{self._line}")
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._out.flush()

    def heard(self, told: int, name: str, part: float | None) -> None:
        """A file in progress is ``part`` done (None: its transcription ended)."""
        with self._lock:
            if part is None:
                self._parts.pop(told, None)
            else:
                self._parts[told] = (name, part)
            if self._line:
                self.draw(*self._counts)

    def draw(self, finished: int, total: int, failed: int) -> None:
        with self._lock:
            self._counts = (finished, total, failed)
            self._line = self._drawn(finished, total, failed)
            self._out.write(CLEAR + self._line)
            self._out.flush()

    def _drawn(self, finished: int, total: int, failed: int) -> str:
        parts = sorted(self._parts.values())
        going = sum(part for _, part in parts)
        filled = min(WIDTH, math.floor(WIDTH * (finished + going) / total)) if total else WIDTH
        note = f", {failed} failed" if failed else ""
        line = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {finished}/{total} files{note}"
        shown = [f"{names.shown(name)} {math.floor(100 * part)}%" for name, part in parts]
        if shown:
            more = len(shown) - SHOWN_FILES
            line += "; " + ", ".join(shown[:SHOWN_FILES]) + (f" +{more}" if more > 0 else "")
        columns = _columns(self._out)  # a bar that wraps would never be cleared
        return line[: max(WIDTH, columns - 1)] if columns else line

    def finish(self, tally: Tally, config: Config) -> None:
        """The bar's last state, then one line that says how it ended."""
        with contextlib.suppress(ValueError):
            _listeners.remove(self.heard)
        with self._lock:
            self._parts.clear()
            if self._line:
                self._line = self._drawn(*self._counts)
        summary = f"{tally.done} done, {tally.skipped} skipped, {tally.failed} failed"
        if tally.unreachable:
            summary += f", {tally.unreachable} waiting (endpoint unreachable: left in place)"
        if tally.failed:
            folders = ", ".join(str(i.failed_dir) for i in config.inboxes if i.failed_dir.is_dir())
            where = f"; quarantined files are in {folders}" if folders else ""
            summary += f" (why: dropscribe status -c {config.source}{where})"
        with self._lock:
            self._out.write(f"{CLEAR}{self._line}\n{summary}\n")
            self._line = ""
            self._out.flush()
