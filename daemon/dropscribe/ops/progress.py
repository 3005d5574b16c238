"""``once`` on a terminal: a progress bar that log lines never glue onto, and a summary.

The bar is the last line of the terminal. A log line (only warnings and errors are
shown under the bar) clears it, is written on its own line, and the bar is drawn
again below it; the summary replaces it at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from dropscribe.jobs.job import Tally
    from dropscribe.vocab.config import Config

WIDTH = 30
CLEAR = "\r\x1b[2K"


class Bar:
    """A stream for the log (``write``) that also draws the bar (``draw``)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._line = ""

    def isatty(self) -> bool:
        return self._out.isatty()

    def write(self, text: str) -> int:
        self._out.write(f"{CLEAR}{text}{self._line}")
        return len(text)

    def flush(self) -> None:
        self._out.flush()

    def draw(self, finished: int, total: int, failed: int) -> None:
        filled = WIDTH * finished // total if total else WIDTH
        note = f", {failed} failed" if failed else ""
        self._line = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {finished}/{total} files{note}"
        self._out.write(CLEAR + self._line)
        self._out.flush()

    def finish(self, tally: Tally, config: Config) -> None:
        """The bar's last state, then one line that says how it ended."""
        summary = f"{tally.done} done, {tally.skipped} skipped, {tally.failed} failed"
        if tally.unreachable:
            summary += f", {tally.unreachable} waiting (endpoint unreachable: left in place)"
        if tally.failed:
            folders = ", ".join(str(i.failed_dir) for i in config.inboxes if i.failed_dir.is_dir())
            where = f"; quarantined files are in {folders}" if folders else ""
            summary += f" (why: dropscribe status -c {config.source}{where})"
        self._out.write(f"{CLEAR}{self._line}\n{summary}\n")
        self._line = ""
        self._out.flush()
