"""What counting spend costs per file: ``dropscribe once`` over N distinct short WAVs, one
worker, against a local server that answers at once, with no budget and with a budget
(each file's cost reserved before its request and settled after: two more durable
ledger writes). With ``--main PATH`` (a checkout's ``daemon`` folder), the same files
through that code too, as the baseline. Medians of alternating runs, a fresh state_dir
each; the machine is shared, so compare only figures from one run of this script.

    python bench/budget.py [--files 40] [--runs 3] [--main /work/main/daemon]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import run_once
from conftest import make_wav
from fakeapi import FakeAPI


def config(work: Path, inbox: Path, url: str, run: int, *, budget: bool) -> Path:
    endpoint: dict[str, object] = {"base_url": url, "timeout": 60, "price_per_hour": 0.27}
    if budget:
        endpoint["budget"] = {"per_day": 1000.0, "per_month": 10000.0}
    path = work / "bench.yaml"
    data = {
        "endpoints": {"fake": endpoint},
        "defaults": {"endpoint": "fake", "model": "whisper-1", "settle_seconds": 0},
        "inboxes": [{"path": str(inbox)}],
        "state_dir": str(work / f"state-{run}"),
        "workers": 1,
        "log": {"format": "json", "level": "warning"},
    }
    path.write_text(json.dumps(data))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--main", type=Path, default=None)
    args = parser.parse_args()
    cases = {"no budget": False, "budget": True}
    if args.main is not None:
        cases = {"main": False, **cases}
    took: dict[str, list[float]] = {name: [] for name in cases}
    run = 0
    with FakeAPI() as api, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inbox = work / "inbox"
        inbox.mkdir()
        for n in range(args.files):
            make_wav(inbox / f"f{n:03}.wav", seconds=0.5, freq=200 + 7 * n)
        for _ in range(args.runs):
            for name, budget in cases.items():
                for old in inbox.glob("*.txt"):
                    old.unlink()
                run += 1
                path = config(work, inbox, api.base_url, run, budget=budget)
                env = os.environ.pop("PYTHONPATH", None)
                if name == "main":
                    os.environ["PYTHONPATH"] = str(args.main)
                try:
                    took[name].append(run_once(path, quiet=True)[0])
                finally:
                    os.environ.pop("PYTHONPATH", None)
                    if env is not None:
                        os.environ["PYTHONPATH"] = env
    base = statistics.median(took["main" if args.main else "no budget"])
    print(f"{args.files} files, one worker, medians of {args.runs} runs")
    for name, times in took.items():
        wall = statistics.median(times)
        print(
            f"  {name:<10} {wall:6.2f} s  added per file {(wall - base) / args.files * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
