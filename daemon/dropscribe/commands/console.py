"""What the reading commands print: names and server messages escaped (they may hold
escape codes), and the exit codes they end with."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dropscribe import names

if TYPE_CHECKING:
    from typing import TextIO

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_UNREACHABLE = 3  # once: not done, an endpoint could not be reached (files left in place)


def say(*parts: object, file: TextIO | None = None) -> None:
    """``print``, with names and server messages escaped."""
    print(names.shown(" ".join(map(str, parts))), file=file or sys.stdout)


def fail(message: str) -> int:
    say(f"dropscribe: {message}", file=sys.stderr)
    return EXIT_CONFIG
