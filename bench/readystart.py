"""How long a start on a recursive inbox of many folders takes to serve (ready22).

    python bench/readystart.py [--files 100000] [--folders 20000] [--rounds 1] [--against REF]

An inbox of ``--folders`` folders (a hundred to a parent) holding ``--files`` empty
``.wav`` names between them (never settled: settle_seconds is an hour, so no job runs).
``dropscribe run`` started with a notify socket of ours (systemd's, as a unit has it);
timed from the start: READY=1, ``daemon.started``, the first ``file.detected``, every
watch added (``inbox.watching``) and the first scan through (``scan.finished``), then a
SIGTERM's time to the exit. With ``--against REF`` the package at that git ref runs too,
the trees alternating; the 1-min load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
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
from scanstop import config  # noqa: E402
from startup import trees  # noqa: E402

TIMED = ("daemon.started", "file.detected", "inbox.watching", "scan.finished")


def inbox(top: Path, files: int, folders: int) -> Path:
    """The inbox: ``folders`` folders, a hundred to a parent, ``files`` names spread over them."""
    box = top / "inbox"
    box.mkdir()
    for n in range(folders):
        folder = box / f"p{n // 100}" / f"f{n % 100}"
        folder.mkdir(parents=True)
        for k in range(n * files // folders, (n + 1) * files // folders):
            os.close(os.open(folder / f"r{k}.wav", os.O_CREAT | os.O_WRONLY, 0o644))
    return box


class Run:
    """``dropscribe run`` from ``source``: when each of ``TIMED`` and READY=1 came first."""

    def __init__(self, source: Path, conf: Path, top: Path) -> None:
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = top / f"notify-{time.monotonic_ns()}.sock"
        self.notify.bind(str(path))
        self.notify.settimeout(0.2)
        env = {**os.environ, "PYTHONPATH": str(source), "BENCH_KEY": "k"}
        env["NOTIFY_SOCKET"] = str(path)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dropscribe", "run", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.readers = [threading.Thread(target=self._read), threading.Thread(target=self._hear)]
        for reader in self.readers:
            reader.start()

    def _note(self, name: str) -> None:
        with self.changed:
            self.seen.setdefault(name, time.monotonic() - self.started)
            self.changed.notify_all()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            name = next((name for name in TIMED if f'"{name}"' in line), None)
            if name is not None and name not in self.seen:
                self._note(name)

    def _hear(self) -> None:
        while self.proc.poll() is None:
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            if "READY=1" in message.splitlines():
                self._note("READY=1")

    def until(self, name: str) -> float:
        with self.changed:
            self.changed.wait_for(lambda: name in self.seen, 900)
        return self.seen[name]

    def terminate(self) -> float:
        """SIGTERM; seconds until the exit."""
        asked = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        took = time.monotonic() - asked
        for reader in self.readers:
            reader.join()
        self.notify.close()
        return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="REF", help="also run the package at this git ref")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="readystart-") as tmp, FakeAPI() as api:
        top = Path(tmp)
        packages = trees(args.against, top)
        made = time.monotonic()
        box = inbox(top, args.files, args.folders)
        print(
            f"{args.files} files in {args.folders} folders, made in"
            f" {time.monotonic() - made:.1f} s; seconds from the start:"
        )
        for n in range(args.rounds):
            for i, (label, source) in enumerate(packages.items()):
                conf = config(top, box, api.base_url, 2.0, f"r{n}t{i}")
                load = os.getloadavg()[0]
                run = Run(source, conf, top)
                run.until("scan.finished")
                stop = run.terminate()
                times = ", ".join(f"{name} {run.seen[name]:5.1f}" for name in ("READY=1", *TIMED))
                print(f"{label:>12}: {times}; SIGTERM to exit {stop:4.2f} s  (load {load:.1f})")


if __name__ == "__main__":
    main()
