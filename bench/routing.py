"""Routing by price and deadline (issue 34's target: ``route: cheapest`` with a 1-hour
deadline meets it on a backlog that the cheapest endpoint alone could not).

Three endpoints on 127.0.0.1 (tests/fakeapi.py) that answer after a real-time factor
times the audio's length, at three prices: ``cheap`` (slow), ``mid`` and ``fast`` (dear).
Time is scaled: the deadline of DEADLINE seconds stands for an hour, so each file of
SECONDS seconds of audio stands for 3600/DEADLINE times as long, and the factors are the
endpoints' real ones. First each endpoint transcribes a few files alone (``dropscribe
once``), which leaves its measured real-time factor in the ledger's history; then, from a
copy of that state_dir each time, a backlog of N files through ``dropscribe once`` with
``endpoint: [cheap, mid, fast]`` and each ``route:``. Reported: the finish (from the first file settling to the last one done, as
the deadline counts; and the whole ``once``, with its start-up) against the deadline, which endpoint took how many
files, and the spend (from the ledger's ``spend`` table) against sending every file to
the cheapest or to the fastest endpoint.

    python bench/routing.py [--files 24] [--seconds 2] [--deadline 20] [--workers 4]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import run_once
from conftest import make_wav
from fakeapi import FakeAPI

# name: (USD an audio hour, wall seconds an audio second); list prices of PROTOCOL.md 7.5
ENDPOINTS = {"cheap": (0.04, 1.5), "mid": (0.18, 0.4), "fast": (0.36, 0.1)}
CONCURRENCY = 2  # each endpoint's max_concurrency
WARM_FILES = 2  # files each endpoint transcribes alone first (its measured speed)


def config(
    work: Path,
    name: str,
    urls: dict[str, str],
    inbox: Path,
    state: Path,
    *,
    endpoint: str | list[str],
    workers: int,
    **defaults: object,
) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(
        json.dumps(
            {
                "endpoints": {
                    n: {
                        "base_url": url,
                        "timeout": 600,
                        "price_per_hour": ENDPOINTS[n][0],
                        "max_concurrency": CONCURRENCY,
                    }
                    for n, url in urls.items()
                },
                "defaults": {
                    "endpoint": endpoint,
                    "model": "whisper-1",
                    "settle_seconds": 0,
                    **defaults,
                },
                "inboxes": [{"path": str(inbox), "name": inbox.name}],
                "state_dir": str(state),
                "workers": workers,
                "log": {"format": "json", "level": "info"},
            }
        )
    )
    return path


def timed(config: Path) -> tuple[float, float]:
    """``dropscribe once -c CONFIG``: its wall seconds, and the seconds from the first
    file settling to the last file done (from its log: what the deadline counts)."""
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(config)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    when: dict[str, list[float]] = {"file.settled": [], "file.done": []}
    for line in (run.stderr + run.stdout).splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") in when:
                stamp = dt.datetime.fromisoformat(event["timestamp"])
                when[event["event"]].append(stamp.timestamp())
    return wall, max(when["file.done"]) - min(when["file.settled"])


def spent(state: Path, folder: str) -> dict[str, tuple[int, float]]:
    """{endpoint: (requests, USD)} the ledger counted for ``folder``."""
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT endpoint, COUNT(*), SUM(cost) FROM spend WHERE folder = ? GROUP BY endpoint",
            (folder,),
        ).fetchall()
    return {str(e): (int(n), float(c)) for e, n, c in rows}


def speeds(state: Path) -> dict[str, float]:
    """Each endpoint's real-time factor as the ledger measured it."""
    with sqlite3.connect(state / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT endpoint, SUM(elapsed) / SUM(seconds) FROM spend WHERE state = 'settled'"
            " GROUP BY endpoint"
        ).fetchall()
    return {str(e): float(f) for e, f in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--deadline", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    scale = 3600.0 / args.deadline
    apis = {name: FakeAPI(per_audio_second=factor) for name, (_, factor) in ENDPOINTS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for api in apis.values():
            api.__enter__()
        try:
            work = Path(tmp)
            urls = {name: api.base_url for name, api in apis.items()}
            warmed = work / "state-warm"
            for index, name in enumerate(ENDPOINTS):
                inbox = work / f"warm-{name}"
                inbox.mkdir()
                for n in range(WARM_FILES):
                    freq = 100 + 37 * (index * WARM_FILES + n)
                    make_wav(inbox / f"w{n}.wav", seconds=args.seconds, freq=freq)
                path = config(work, f"warm-{name}", urls, inbox, warmed, endpoint=name, workers=1)
                run_once(path, quiet=True)
            measured = speeds(warmed)
            backlog = work / "backlog"
            backlog.mkdir()
            for n in range(args.files):
                make_wav(backlog / f"f{n:03}.wav", seconds=args.seconds, freq=1000 + 11 * n)
            audio = args.files * args.seconds
            cheapest = audio * ENDPOINTS["cheap"][0] / 3600
            fastest = audio * ENDPOINTS["fast"][0] / 3600
            alone = audio * ENDPOINTS["cheap"][1] / min(CONCURRENCY, args.workers)
            print(
                f"{args.files} files of {args.seconds:g} s ({args.seconds * scale / 60:g} min"
                f" scaled), deadline {args.deadline:g} s (1 h scaled), {args.workers} workers,"
                f" max_concurrency {CONCURRENCY} each"
            )
            print(
                "  measured real-time factors: "
                + ", ".join(f"{n} {measured.get(n, 0):.2f}" for n in ENDPOINTS)
                + f"; cheap alone would need ~{alone:.0f} s"
            )
            for route in ("cheapest", "fastest", "in_order"):
                state = work / f"state-{route}"
                shutil.copytree(warmed, state)
                for old in backlog.glob("*.txt"):
                    old.unlink()
                path = config(
                    work,
                    route,
                    urls,
                    backlog,
                    state,
                    endpoint=list(ENDPOINTS),
                    workers=args.workers,
                    route=route,
                    deadline=args.deadline,
                )
                wall, took = timed(path)
                done = len(list(backlog.glob("*.txt")))
                by = spent(state, "backlog")
                cost = sum(c for _, c in by.values())
                met = "met" if took <= args.deadline else "MISSED"
                print(
                    f"  {route:<9} finish {took:5.1f} s of {args.deadline:g} ({met}; once"
                    f" {wall:4.1f} s), {done}/{args.files} done; files "
                    + ", ".join(f"{n} {by.get(n, (0, 0))[0]}" for n in ENDPOINTS)
                    + f"; spend {cost / cheapest:4.2f}x all-cheapest,"
                    f" {cost / fastest:4.2f}x all-fastest"
                )
        finally:
            for api in apis.values():
                api.__exit__(None, None, None)


if __name__ == "__main__":
    main()
