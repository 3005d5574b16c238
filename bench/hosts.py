"""Several hosts on one inbox: files per second of one daemon against three, sharing a
PostgreSQL ledger, against a server that answers in 0.2 s and lets each host have two
uploads at once.

    python bench/hosts.py [--files 300] [--delay 0.2] [--hosts 3] [--rounds 3]

Each round starts the daemons (``dropscribe run``, each with its own state_dir and
``max_concurrency: 2``) on an empty inbox and a fresh database, waits until every one
is watching, then moves the recordings in at once; the figure runs from that moment
until the last sidecar exists. The PostgreSQL server is a cluster of the bench's own
(initdb in a temp folder, as the tests make one). The "hosts" are processes on this
machine: what is measured is how the claims share the work, not a network.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import pg  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402
from throughput import make_files  # noqa: E402 - the same files, each its own content

ONE_SECOND = 44 + 16000 * 2  # bytes of a one-second 16 kHz mono WAV


def config(work: Path, name: str, inbox: Path, base_url: str, url: str) -> Path:
    folder = work / name
    folder.mkdir()
    (folder / "password").write_text(pg.PASSWORD)
    path = folder / "dropscribe.yaml"
    data = {
        "endpoints": {
            "fake": {"base_url": base_url, "api_key_env": "BENCH_KEY", "max_concurrency": 2}
        },
        "defaults": {"endpoint": "fake", "model": "whisper-1", "settle_seconds": 0.2},
        "inboxes": [{"path": str(inbox), "name": "calls"}],
        "state_dir": str(folder / "state"),
        "workers": 2,
        "processes": 1,
        "rescan_seconds": 5,
        "log": {"format": "json", "level": "info"},
        "ledger": {"url": url, "password_file": "password", "host": name},
    }
    path.write_text(json.dumps(data))
    return path


def one_round(cluster: pg.Cluster, api: FakeAPI, hosts: int, files: int) -> float:
    """Seconds from the files' arrival until the last sidecar, with ``hosts`` daemons."""
    work = Path(tempfile.mkdtemp(prefix="dropscribe-hosts-"))
    try:
        staged = make_files(work / "staged", files, size=ONE_SECOND)
        inbox = work / "inbox"
        inbox.mkdir()
        url = cluster.database()
        procs = []
        logs = []
        for n in range(hosts):
            log = (work / f"h{n}.log").open("w")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dropscribe",
                        "run",
                        "-c",
                        str(config(work, f"h{n}", inbox, api.base_url, url)),
                    ],
                    stderr=log,
                    env={**os.environ, "BENCH_KEY": "sk-bench"},
                )
            )
        try:
            for n in range(hosts):
                wait_started(work / f"h{n}.log")
            start = time.perf_counter()
            for path in staged:
                path.rename(inbox / path.name)
            pending = [inbox / p.with_suffix(".txt").name for p in staged]
            while pending:
                while pending and pending[-1].exists():
                    pending.pop()
                time.sleep(0.01)  # the bench's polling, not a test's synchronisation
            return time.perf_counter() - start
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(60)
            for log in logs:
                log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wait_started(log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if '"daemon.started"' in log.read_text():
            return
        time.sleep(0.05)
    raise SystemExit(f"a daemon did not start; its log:\n{log.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.2, help="the server's answer time")
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cluster = pg.Cluster()
    try:
        with FakeAPI(delay=args.delay) as api:
            one, many = [], []
            for _ in range(args.rounds):
                one.append(args.files / one_round(cluster, api, 1, args.files))
                many.append(args.files / one_round(cluster, api, args.hosts, args.files))
    finally:
        cluster.destroy()
    a, b = statistics.median(one), statistics.median(many)
    ideal = 2 / args.delay
    print(f"{args.files} files, server answers in {args.delay} s, two uploads per host")
    print(f"1 host:  {a:6.2f} files/s (rounds: {', '.join(f'{x:.2f}' for x in one)})")
    print(f"{args.hosts} hosts: {b:6.2f} files/s (rounds: {', '.join(f'{x:.2f}' for x in many)})")
    print(f"ratio: {b / a:.2f}x (one host's ceiling: {ideal:.1f} files/s)")


if __name__ == "__main__":
    main()
