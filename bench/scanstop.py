"""How long a SIGTERM takes to end the daemon while it scans a huge inbox (scan21).

    python bench/scanstop.py [--files 100000] [--deep 0] [--grace 2] [--against REF]

An inbox of ``--files`` empty ``.wav`` files (never settled: settle_seconds is an hour,
so no job runs and the scan is all there is), in the inbox itself or, with ``--deep N``,
at the bottom of N nested folders: each look at a file walks the whole path, a cheap
stand-in for a share whose every stat is slow. Two runs of ``dropscribe run`` per tree:
one timed from the start until every file is detected (the whole scan), one given a
SIGTERM once a tenth of them are, timed from the signal to the exit (the promise:
``shutdown_grace`` + 1 s). With ``--against REF`` the package at that git ref runs too,
the trees alternating; the 1-min load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fakeapi import FakeAPI  # noqa: E402
from folders import deep_tree  # noqa: E402
from startup import trees  # noqa: E402


def inbox(top: Path, files: int, depth: int) -> Path:
    """The inbox, with ``files`` empty WAV names ``depth`` folders down (made relative to
    each folder's descriptor: no path walked)."""
    box = top / "inbox"
    deep_tree(box, depth, (f"r{n}.wav" for n in range(files)))
    return box


def config(top: Path, box: Path, base_url: str, grace: float, name: str) -> Path:
    path = top / f"{name}.yaml"
    path.write_text(
        json.dumps(
            {
                "endpoints": {"e": {"base_url": base_url, "api_key_env": "BENCH_KEY"}},
                "defaults": {"endpoint": "e", "model": "whisper-1", "settle_seconds": 3600},
                "inboxes": [{"path": str(box), "recursive": True}],
                "state_dir": str(top / f"state-{name}"),
                "rescan_seconds": 3600,
                "shutdown_grace": grace,
                "log": {"format": "json", "level": "info"},
            }
        )
    )
    return path


class Run:
    """``dropscribe run`` from ``source``; counts its file.detected events."""

    def __init__(self, source: Path, conf: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(source), "BENCH_KEY": "k"}
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dropscribe", "run", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.detected = 0
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if '"file.detected"' in line:
                with self.changed:
                    self.detected += 1
                    self.changed.notify_all()

    def until(self, count: int) -> float:
        """Seconds from the start until ``count`` files are detected."""
        with self.changed:
            self.changed.wait_for(lambda: self.detected >= count, 900)
        return time.monotonic() - self.started

    def terminate(self) -> float:
        """SIGTERM; seconds until the exit."""
        asked = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        took = time.monotonic() - asked
        self.reader.join()
        return took


def measure(source: Path, conf: Path, files: int) -> tuple[float, float]:
    """(seconds to scan the whole inbox, seconds from a SIGTERM a tenth in to the exit)."""
    whole = Run(source, conf)
    scanned = whole.until(files)
    whole.terminate()
    cut = Run(source, conf)
    cut.until(max(1, files // 10))
    return scanned, cut.terminate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--deep", type=int, default=0, metavar="N")
    parser.add_argument("--grace", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="REF", help="also run the package at this git ref")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scanstop-") as tmp, FakeAPI() as api:
        top = Path(tmp)
        packages = trees(args.against, top)
        made = time.monotonic()
        box = inbox(top, args.files, args.deep)
        print(
            f"{args.files} files, {args.deep} folders deep, made in {time.monotonic() - made:.1f} s"
        )
        print(f"promise: exit within shutdown_grace + 1 s = {args.grace + 1:.1f} s")
        for n in range(args.rounds):
            for i, (label, source) in enumerate(packages.items()):
                conf = config(top, box, api.base_url, args.grace, f"r{n}t{i}")
                load = os.getloadavg()[0]
                scanned, stop = measure(source, conf, args.files)
                print(
                    f"{label:>12}: whole scan {scanned:6.1f} s, SIGTERM to exit {stop:6.2f} s"
                    f"  (load {load:.1f})"
                )


if __name__ == "__main__":
    main()
