"""Files per second end to end: dropscribe against `xargs -P8 curl`, same files, same server.

    python bench/throughput.py [--files 1000] [--size 102400] [--processes auto] [--workers 4]
                               [--dir DIR] [--history 100000] [--against TREE] [--ledger-waits]
                               [--hook] [--postgres [URL]]

Both upload every file to one local fake server that answers at once. dropscribe's
figure is from the first file landing in the inbox until the last sidecar exists,
so it includes noticing, settling (settle_seconds below), hashing, the ledger and
fsync'd sidecar writes; curl only uploads and discards the answer.

The files, the inbox and the state live under --dir (the system temp folder by
default). The filesystem matters to dropscribe alone, as only it creates files
(one sidecar per recording): on an ext4 without a ledger, creating a file skips
every inode freed in the last few minutes, so right after many deletions (a test
run) each new file costs up to a millisecond of kernel time. Its line below
names the filesystem, for comparing runs.

--history N starts each dropscribe run with a ledger that already holds N finished
recordings (jobs, files and sidecars, with 1 KB transcripts), as after a year in
service: the figure should not move.

--against TREE times another checkout's daemon too (its daemon/ folder; e.g. `git
worktree add /tmp/before COMMIT`), in the same rounds: did a change move the figure?
After every daemon run the ledger is checked (each file done, each job one attempt, one
upload per file) and the daemon's warnings and errors are counted by event.
--ledger-waits counts, in every dropscribe process, how often a ledger write waited for
the write turn and how often its BEGIN found the database locked (bench/ledgerwaits/).

--hook gives the folder a hook command that exits at once (``/bin/true``): what a hooked
file costs (owed20: the hooks20 row owed in file_done's write, and deleted once the hook
ran); the check then wants no hook failed and no row left owed. --postgres runs each
daemon on a fresh database of a shared ledger (the URL, a superuser's, by default
DROPSCRIBE_TEST_POSTGRES: the server the tests use) instead of SQLite.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import psycopg  # noqa: E402

import pg  # noqa: E402
from dropscribe.ingest.watcher import filesystem_type  # noqa: E402
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402

SETTLE = 0.5
WAITS = ROOT / "bench" / "ledgerwaits"  # its sitecustomize counts the ledger's waits


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    frames = (size - 44) // 2
    paths = []
    for n in range(count):
        path = folder / f"rec-{n:05d}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            # distinct content per file, so no two share a fingerprint
            out.writeframes(n.to_bytes(4, "little") * (frames // 2))
        paths.append(path)
    return paths


def fill_ledger(state: Path, count: int) -> None:
    """A ledger holding ``count`` finished recordings, as a long-running daemon's would."""
    SqliteLedger(state / LEDGER_NAME).close()  # the schema
    result = json.dumps({"text": "word " * 200})
    db = sqlite3.connect(state / LEDGER_NAME)
    with db:
        for n in range(count):
            key = f"{n:064x}:{n % 7:016x}"
            old = f"/srv/old/{n // 1000}/rec-{n}.wav"
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, '{}', 'done', 1, NULL, 200, ?, ?, 0, 0)",
                (key, key[:64], f"req_{n}", result),
            )
            db.execute(
                "INSERT INTO files VALUES (?, 'old', 1, 1, ?, ?, ?, 'done', 'txt', ?, NULL, 0)",
                (old, n, key[:64], key, json.dumps([old[:-3] + "txt"])),
            )
            db.execute("INSERT INTO sidecars VALUES (?, ?)", (old[:-3] + "txt", old))
    db.close()


def bench_curl(api: FakeAPI, files: list[Path]) -> float:
    url = f"{api.base_url}/audio/transcriptions"
    args = "\n".join(str(p) for p in files)
    start = time.perf_counter()
    subprocess.run(
        [
            "xargs",
            "-P8",
            "-I{}",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-F",
            "file=@{}",
            "-F",
            "model=whisper-1",
            url,
        ],
        input=args,
        text=True,
        check=True,
    )
    return time.perf_counter() - start


def _settings(
    api: FakeAPI,
    work: Path,
    inbox: Path,
    knobs: tuple[str, int | None, int | None],
    hook: bool,
    ledger: str | None,
) -> dict[str, object]:
    """The daemon's config: unset knobs (processes, workers, concurrency) keep
    dropscribe's shipped defaults."""
    processes, workers, concurrency = knobs
    defaults: dict[str, object] = {
        "endpoint": "fake",
        "model": "whisper-1",
        "settle_seconds": SETTLE,
    }
    endpoint: dict[str, object] = {"base_url": api.base_url}
    settings: dict[str, object] = {
        "endpoints": {"fake": endpoint},
        "defaults": defaults,
        "inboxes": [{"path": str(inbox)}],
        "processes": int(processes) if processes.isdigit() else processes,
        "state_dir": str(work / "state"),
        "log": {"format": "json", "level": "warning"},
    }
    if concurrency is not None:
        endpoint["max_concurrency"] = concurrency
    if workers is not None:
        settings["workers"] = workers
    if hook:  # owed20: a hook that costs next to nothing itself
        defaults["hook"] = {"command": ["/bin/true"]}
    if ledger is not None:  # owed20: a shared ledger, this run's own database
        (work / "password").write_text(pg.PASSWORD)
        settings["ledger"] = {"url": ledger, "password_file": str(work / "password")}
    return settings


def bench_daemon(
    api: FakeAPI,
    files: list[Path],
    work: Path,
    processes: str,
    workers: int | None,
    concurrency: int | None,
    history: int = 0,
    *,
    tree: Path = ROOT,
    waits: bool = False,
    hook: bool = False,
    ledger: str | None = None,
) -> float:
    """Seconds for the real daemon (``tree``'s) to transcribe ``files``; unset knobs keep
    dropscribe's shipped defaults. Its log goes to ``work``/daemon.log."""
    inbox = work / "inbox"
    inbox.mkdir()
    if history:
        fill_ledger(work / "state", history)
    config = work / "bench.yaml"
    settings = _settings(api, work, inbox, (processes, workers, concurrency), hook, ledger)
    config.write_text(json.dumps(settings))
    env = dict(os.environ, PYTHONPATH=str(tree / "daemon"))
    if waits:
        (work / "waits").mkdir()
        env.update(
            PYTHONPATH=f"{WAITS}:{tree / 'daemon'}", DROPSCRIBE_BENCH_WAITS=str(work / "waits")
        )
    with (work / "daemon.log").open("wb") as log:
        command = [sys.executable, "-m", "dropscribe", "run", "-c", str(config)]
        proc = subprocess.Popen(command, env=env, stderr=log)
    try:
        lock = work / "state" / "lock"
        deadline = time.monotonic() + 30
        while not lock.exists():  # the state directory's lock appears as the daemon starts
            if time.monotonic() > deadline:
                raise SystemExit("daemon did not start")
            time.sleep(0.05)
        time.sleep(0.5)
        start = time.perf_counter()
        for path in files:
            path.rename(inbox / path.name)  # atomic, as a sync tool's final rename
        expected = [inbox / (p.stem + ".txt") for p in files]
        pending = list(expected)
        while pending:  # cheap polling: stop at the first missing sidecar
            while pending and pending[-1].exists():
                pending.pop()
            while pending and pending[0].exists():
                pending.pop(0)
            if pending:
                time.sleep(0.02)
        pending = [p for p in expected if not p.exists()]
        assert not pending
        elapsed = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)
    return elapsed


def checked(work: Path, count: int, uploads: int, ledger: str | None) -> dict[str, object]:
    """What one daemon run left: its ledger (each file done, each job one attempt, no hook
    owed), its uploads (one per file), its warnings and errors by event, and the ledger's
    waits."""
    states, again, owed = _ledger_rows(work, ledger)
    said: collections.Counter[str] = collections.Counter()
    for line in (work / "daemon.log").read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("level") in {"warning", "error"}:
                said[str(event.get("event"))] += 1
    waits: collections.Counter[str] = collections.Counter()
    for counts in (work / "waits").glob("*.json") if (work / "waits").exists() else []:
        waits.update(json.loads(counts.read_text()))
    problems = states.get("done", 0) != count or again or uploads != count or owed
    return {
        "ok": not problems,
        "files": states,
        "jobs_tried_again": again,
        "hooks_owed": owed,
        "uploads": uploads,
        "warnings": dict(said),
        "waits": {k: round(v, 3) for k, v in waits.items()},
    }


FILE_STATES = "SELECT state, count(*) FROM files GROUP BY state"
TRIED_AGAIN = "SELECT count(*) FROM jobs WHERE attempts > 1"
OWED = "SELECT count(*) FROM hooks"  # none before hooks20: 0


def _ledger_rows(work: Path, ledger: str | None) -> tuple[dict[str, int], int, int]:
    """Files by state, jobs tried again, hooks owed, in the run's SQLite or PostgreSQL."""
    if ledger is not None:
        with psycopg.connect(ledger, password=pg.PASSWORD, autocommit=True) as pdb:
            states = {str(k): int(n) for k, n in pdb.execute(FILE_STATES).fetchall()}
            (again,) = pdb.execute(TRIED_AGAIN).fetchone() or (0,)
            tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'hooks'"
            (hooked,) = pdb.execute(tables).fetchone() or (0,)
            (owed,) = (pdb.execute(OWED).fetchone() or (0,)) if hooked else (0,)
        return states, int(again), int(owed)
    db = sqlite3.connect(work / "state" / LEDGER_NAME)
    try:
        states = dict(db.execute(FILE_STATES).fetchall())
        (again,) = db.execute(TRIED_AGAIN).fetchone()
        try:
            (owed,) = db.execute(OWED).fetchone()
        except sqlite3.OperationalError:  # a tree before hooks20
            owed = 0
    finally:
        db.close()
    return states, int(again), int(owed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; medians")
    parser.add_argument("--processes", default="auto", help="dropscribe's processes: (auto)")
    parser.add_argument("--workers", type=int, help="dropscribe's workers: (default 4)")
    parser.add_argument(
        "--concurrency", type=int, help="the endpoint's max_concurrency (default 4)"
    )
    parser.add_argument("--dir", type=Path, help="where files, inbox and state live")
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="finished recordings in the ledger before each dropscribe run",
    )
    parser.add_argument(
        "--against", type=Path, help="another checkout whose daemon is timed in the same rounds"
    )
    parser.add_argument(
        "--ledger-waits", action="store_true", help="count the ledger's waits (ledgerwaits/)"
    )
    parser.add_argument("--hook", action="store_true", help="a hook command exiting at once")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=os.environ.get("DROPSCRIBE_TEST_POSTGRES", ""),
        help="a shared ledger on this server (superuser URL; DROPSCRIBE_TEST_POSTGRES)",
    )
    args = parser.parse_args()
    if args.postgres == "" or (args.postgres and args.history):
        raise SystemExit("--postgres needs a URL (or DROPSCRIBE_TEST_POSTGRES), no --history")
    server = pg.SharedServer(args.postgres) if args.postgres else None
    trees = [ROOT] if args.against is None else [ROOT, args.against.resolve()]
    work = Path(tempfile.mkdtemp(prefix="dropscribe-bench-", dir=args.dir))
    try:
        files = make_files(work / "source", args.files, args.size)
        curls: list[float] = []
        daemons: dict[Path, list[float]] = {tree: [] for tree in trees}
        with FakeAPI() as api:
            for n in range(args.rounds):  # rotate which goes first
                runs: list[Path | None] = [None, *trees]
                for tree in runs[n % len(runs) :] + runs[: n % len(runs)]:
                    if tree is None:
                        curls.append(bench_curl(api, files))
                        continue
                    round_dir = work / f"round-{n}-{len(daemons[tree])}-{tree.name}"
                    round_dir.mkdir()
                    before = len(api.uploads)
                    knobs = (args.processes, args.workers, args.concurrency, args.history)
                    ledger = server.database() if server else None
                    took = bench_daemon(
                        api,
                        files,
                        round_dir,
                        *knobs,
                        tree=tree,
                        waits=args.ledger_waits,
                        hook=args.hook,
                        ledger=ledger,
                    )
                    daemons[tree].append(took)
                    left = checked(round_dir, len(files), len(api.uploads) - before, ledger)
                    print(f"round {n} {tree}: {took:.2f} s {json.dumps(left)}")
                    assert left["ok"], left
                    for path in (round_dir / "inbox").glob("*.wav"):
                        path.rename(work / "source" / path.name)
        curl_s = statistics.median(curls)
        curl_rate = len(files) / curl_s
        fstype = filesystem_type(work, Path("/proc/self/mountinfo").read_text())
        print(
            f"files: {len(files)} x {args.size} bytes, {len(files)} uploads per run each; "
            f"median of {args.rounds} alternating runs; in {work.parent} ({fstype})"
        )
        print(f"xargs -P8 curl: {curl_s:6.2f} s  {curl_rate:7.1f} files/s")
        for tree, times in daemons.items():
            daemon_s = statistics.median(times)
            daemon_rate = len(files) / daemon_s
            print(
                f"dropscribe:     {daemon_s:6.2f} s  {daemon_rate:7.1f} files/s "
                f"(processes: {args.processes}; includes settle_seconds={SETTLE}; "
                f"{args.history} recordings in the ledger before; hook: {args.hook};"
                f" {'PostgreSQL' if server else 'SQLite'}; {tree})"
            )
            singles = sorted(c / d for c, d in zip(curls, times, strict=True))
            print(
                f"ratio: {daemon_rate / curl_rate:.2f}x curl (target >= 1.5x); "
                f"single rounds {singles[0]:.2f}x to {singles[-1]:.2f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
