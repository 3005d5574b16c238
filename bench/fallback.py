"""The delay a down first endpoint adds per file (issue 34's target: at most 2 s at the
switch): ``dropscribe once`` over N distinct short WAVs, one worker, against a local server
that answers at once; the folder lists only that server (baseline), or a down endpoint
first and that server second. Down is either refused (nothing listens: the usual case) or
a black hole (a full listen backlog: SYNs go unanswered, so each try waits out
``connect_timeout``). Medians of alternating runs; the machine is shared, so compare only
figures from one run of this script.

    python bench/fallback.py [--files 40] [--runs 3] [--connect-timeout 1]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import run_once
from conftest import make_wav
from fakeapi import FakeAPI


def refused() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def black_hole() -> tuple[socket.socket, str]:
    """A listening socket whose backlog is full: a new connection is never accepted."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)
    port = hole.getsockname()[1]
    fillers = []  # kept open (on the function) until the process ends
    for _ in range(4):  # fill the accept queue (and the SYN queue's allowance)
        filler = socket.socket()
        filler.setblocking(False)  # noqa: FBT003 - the socket API
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    black_hole.keep = fillers  # type: ignore[attr-defined]
    return hole, f"http://127.0.0.1:{port}/v1"


def config(work: Path, inbox: Path, endpoints: dict[str, str], connect: float) -> Path:
    path = work / f"{'-'.join(endpoints)}.yaml"
    path.write_text(
        json.dumps(
            {
                "endpoints": {
                    name: {"base_url": url, "connect_timeout": connect, "timeout": 60}
                    for name, url in endpoints.items()
                },
                "defaults": {
                    "endpoint": list(endpoints),
                    "model": "whisper-1",
                    "settle_seconds": 0,
                },
                "inboxes": [{"path": str(inbox)}],
                "state_dir": str(work / f"state-{'-'.join(endpoints)}-{time.monotonic_ns()}"),
                "workers": 1,
                "processes": 1,
                "log": {"format": "json", "level": "error"},
            }
        )
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connect-timeout", type=float, default=1.0)
    args = parser.parse_args()
    hole, hole_url = black_hole()
    with FakeAPI() as api, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inbox = work / "inbox"
        inbox.mkdir()
        for n in range(args.files):
            make_wav(inbox / f"f{n:03}.wav", seconds=0.5, freq=200 + 7 * n)
        cases = {
            "baseline": {"up": api.base_url},
            "refused": {"down": refused(), "up": api.base_url},
            "black hole": {"hole": hole_url, "up": api.base_url},
        }
        took: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, endpoints in cases.items():
                for old in inbox.glob("*.txt"):
                    old.unlink()
                path = config(work, inbox, endpoints, args.connect_timeout)
                took[name].append(run_once(path)[0])
    hole.close()
    base = statistics.median(took["baseline"])
    print(f"{args.files} files, one worker, medians of {args.runs} runs")
    for name, times in took.items():
        wall = statistics.median(times)
        added = (wall - base) / args.files
        print(f"  {name:<10} {wall:6.2f} s  added per file {added * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
