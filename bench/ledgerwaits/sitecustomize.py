"""Measurement only (bench/throughput.py --ledger-waits): put on PYTHONPATH, it counts in
every dropscribe process how often the SQLite ledger's writer waited for the write turn
(a flock another process held), and how often its ``BEGIN IMMEDIATE`` found the
database locked and napped (grace18's ``locked.begin``; a checkout from before it has no
naps to count), into ``$DROPSCRIBE_BENCH_WAITS/<pid>.json`` twice a second."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

OUT = os.environ.get("DROPSCRIBE_BENCH_WAITS")
COUNTS: dict[str, float] = dict.fromkeys(
    ("takes", "takes_waited", "take_seconds", "begins", "begins_napped", "naps"), 0
)


def _wrap() -> None:
    from dropscribe.ledger import locked, writeturn  # noqa: PLC0415 - only when measuring

    take = writeturn.WriteTurn.take

    def timed_take(self: Any, *args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        try:
            take(self, *args, **kwargs)
        finally:
            took = time.perf_counter() - start
            COUNTS["takes"] += 1
            COUNTS["takes_waited"] += took > 0.001  # the flock was held: blocked for it
            COUNTS["take_seconds"] += took

    writeturn.WriteTurn.take = timed_take  # type: ignore[method-assign]
    nap = getattr(writeturn.WriteTurn, "nap", None)
    begin = getattr(locked, "begin", None)
    if nap is None or begin is None:
        return

    def counted_nap(self: Any, seconds: float) -> None:
        COUNTS["naps"] += 1
        nap(self, seconds)

    def counted_begin(*args: Any, **kwargs: Any) -> None:
        naps = COUNTS["naps"]
        try:
            begin(*args, **kwargs)
        finally:
            COUNTS["begins"] += 1
            COUNTS["begins_napped"] += COUNTS["naps"] > naps

    writeturn.WriteTurn.nap = counted_nap  # type: ignore[attr-defined]
    locked.begin = counted_begin


def _dump(out: str) -> None:
    while True:
        time.sleep(0.5)
        Path(out, f"{os.getpid()}.json").write_text(json.dumps(COUNTS), encoding="utf-8")


if OUT:
    _wrap()
    threading.Thread(target=_dump, args=(OUT,), daemon=True).start()
