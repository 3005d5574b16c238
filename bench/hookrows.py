"""What a hooked file adds to its ledger writes (owed20): one thread finishing files one
after another, each ``file_done`` alone, or with its hook owed in the same write and the
row deleted once the hook ran (``hook_ran``); per file, median of alternating rounds.

    python bench/hookrows.py [--files 500] [--rounds 5] [--dir DIR] [--postgres [URL]]

The hook itself is not run: its cost is its own (a process, a POST). SQLite commits
with ``synchronous=FULL`` (an fsync per group commit), so ``--dir`` (the system temp
folder by default) matters; ``--postgres`` times a shared ledger on a fresh database of
that server (a superuser's URL, by default DROPSCRIBE_TEST_POSTGRES) instead. Which
dropscribe is timed is the one on PYTHONPATH: run it once per tree to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import dropscribe  # noqa: E402
import pg  # noqa: E402
from dropscribe.ledger.owed import OwedHook  # noqa: E402
from dropscribe.ledger.places import Places  # noqa: E402
from dropscribe.ledger.postgres import PostgresLedger  # noqa: E402
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger  # noqa: E402
from dropscribe.vocab.config import SharedLedger  # noqa: E402
from dropscribe.vocab.states import FileState, JobKey  # noqa: E402

INBOX = Path("/srv/in")


def one_round(ledger: SqliteLedger | PostgresLedger, files: int, *, hooked: bool) -> float:
    """Seconds per file: ``files`` finished, each with its hook owed and ran if ``hooked``
    (the ledger closed at the end: what was queued is committed within the figure). Each
    file's row is recorded (uploading) before the clock starts, as the daemon's is."""
    paths = [INBOX / f"rec-{n:05d}.wav" for n in range(files)]
    for n, path in enumerate(paths):
        digest = f"{n:064x}"
        key = JobKey(digest, "0" * 16)
        ledger.record_file(path, "calls", (1, n, n), digest, key, FileState.UPLOADING)
    start = time.perf_counter()
    for path in paths:
        body = {"file": str(path), "outcome": "done", "late": False}
        owed = OwedHook(path, "done", "calls", body) if hooked else None
        ledger.file_done(path, ["txt"], [path.with_suffix(".txt")], owed)
        if hooked:
            ledger.hook_ran(path, "done")
    ledger.close()
    return (time.perf_counter() - start) / files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where the SQLite ledgers live")
    parser.add_argument(
        "--postgres", nargs="?", const=os.environ.get("DROPSCRIBE_TEST_POSTGRES", "")
    )
    args = parser.parse_args()
    if args.postgres == "":
        raise SystemExit("--postgres needs a URL (or DROPSCRIBE_TEST_POSTGRES)")
    server = pg.SharedServer(args.postgres) if args.postgres else None
    work = Path(tempfile.mkdtemp(prefix="dropscribe-hookrows-", dir=args.dir))
    times: dict[bool, list[float]] = {False: [], True: []}
    try:
        for n in range(args.rounds):
            for hooked in (n % 2 == 0, n % 2 != 0):  # alternate which goes first
                if server is not None:
                    shared = SharedLedger(server.database(), pg.PASSWORD, "bench", 30.0)
                    ledger: SqliteLedger | PostgresLedger = PostgresLedger(
                        shared, Places([("calls", INBOX)])
                    )
                else:
                    ledger = SqliteLedger(work / f"{n}-{hooked}" / LEDGER_NAME)
                times[hooked].append(one_round(ledger, args.files, hooked=hooked))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plain, hooked = (statistics.median(times[h]) * 1e6 for h in (False, True))
    print(
        f"{'PostgreSQL' if server else 'SQLite'}, {args.files} files, median of"
        f" {args.rounds}; {Path(dropscribe.__file__).parent.parent.parent}:"
    )
    print(f"  file_done alone:           {plain:8.0f} µs a file")
    print(f"  with its hook owed, ran:   {hooked:8.0f} µs a file (+{hooked - plain:.0f} µs)")


if __name__ == "__main__":
    main()
