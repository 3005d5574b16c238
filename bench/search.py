"""Search over a large ledger: query time, and what the index adds to its size.

    python bench/search.py [--transcripts 10000] [--minutes 60] [--words] [--dir DIR]

Builds a ledger of ``--transcripts`` one-hour transcripts with the ledger's own
statements (``queries.UPSERT_ATTEMPT``, ``JOB_DONE``, ``UPSERT_FILE``, ``FILE_DONE``), so
the triggers index each as the daemon's ``finish`` would. The text is SYNTHETIC: 150
words a minute, 12-word segments with times, drawn from a vocabulary of 30,000 made-up
words with a Zipf distribution (s = 1.1: the commonest word is about one word in ten,
as "the" is in English). ``--words`` also stores a word-timestamp list, as the local
engine and whisper-1's verbose_json give; without it the ledger is smaller, so the
index's share of it is larger (the harder case).

Then it times ``SqliteLedger.search`` (in-process, the ledger opened as `dropscribe
search` opens it) for a rare, a middling and the commonest word, a phrase, a prefix,
an exclusion and filters: each query 7 times, the first (cold) apart from the median
of the rest. Size: ``dbstat`` pages of the index's tables and indexes (search_text*,
search_docs and its indexes, files_key) against the rest of the ledger.

The same on PostgreSQL: ``bench/search_pg.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "daemon"))

from dropscribe.ledger import queries, terms  # noqa: E402
from dropscribe.ledger.search import Filters  # noqa: E402
from dropscribe.ledger.store import SqliteLedger  # noqa: E402
from dropscribe.vocab.states import JobKey  # noqa: E402

VOCABULARY = 30_000
PER_MINUTE = 150
PER_SEGMENT = 12
ZIPF = 1 / np.arange(1, VOCABULARY + 1) ** 1.1
ZIPF /= ZIPF.sum()
INDEX_PARTS = (
    "search_text",
    "search_docs",
    "sqlite_autoindex_search_docs",
    "search_steps",
    "sqlite_autoindex_search_steps",
    "step_outputs_key",
    "files_key",
)


def vocabulary(rng: np.random.Generator) -> np.ndarray:
    """Made-up words of 1-4 syllables, distinct."""
    onsets = ["", "b", "br", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "st", "t", "v"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou"]
    codas = ["", "n", "r", "s", "t", "l", "nd"]
    found: set[str] = set()
    while len(found) < VOCABULARY:
        count = int(rng.integers(1, 5))
        found.add(
            "".join(
                onsets[rng.integers(len(onsets))]
                + vowels[rng.integers(len(vowels))]
                + codas[rng.integers(len(codas))]
                for _ in range(count)
            )
        )
    return np.array(sorted(found, key=lambda w: (len(w), w)))  # short words commonest, as in speech


def transcript(rng: np.random.Generator, vocab: np.ndarray, minutes: float, words: bool) -> dict:
    count = int(minutes * PER_MINUTE)
    ranks = rng.choice(VOCABULARY, size=count, p=ZIPF)  # bounded: numpy's zipf has no end
    said = vocab[ranks]
    seconds = minutes * 60 / count
    segments, timed = [], []
    for first in range(0, count, PER_SEGMENT):
        chunk = said[first : first + PER_SEGMENT]
        start = first * seconds
        text = " ".join(chunk).capitalize() + "."
        segments.append(
            {
                "id": len(segments),
                "start": round(start, 2),
                "end": round(start + len(chunk) * seconds, 2),
                "text": text,
            }
        )
        if words:
            timed += [
                {
                    "word": w,
                    "start": round(start + n * seconds, 2),
                    "end": round(start + (n + 1) * seconds, 2),
                }
                for n, w in enumerate(chunk)
            ]
    return {
        "text": " ".join(s["text"] for s in segments),
        "language": "en",
        "duration": minutes * 60,
        "segments": segments,
        "words": timed,
    }


def build(path: Path, count: int, minutes: float, words: bool) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(35)
    vocab = vocabulary(rng)
    SqliteLedger(path).close()  # the layout, the index and its triggers
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    sample: dict = {}
    now = time.time() - count * 60
    for n in range(count):
        if n % 100 == 0:
            db.execute("BEGIN")
        result = transcript(rng, vocab, minutes, words)
        sample = sample or result
        for sql, args in stored(n, result, now):
            db.execute(sql, args)
        if n % 100 == 99 or n == count - 1:
            db.execute("COMMIT")
        if n % 1000 == 999:
            print(f"  {n + 1} transcripts, {time.perf_counter() - start:.0f} s", flush=True)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return vocab, sample


def stored(n: int, result: dict, now: float) -> list[tuple[str, tuple]]:
    """The ledger's own statements storing transcript ``n`` (``?`` placeholders)."""
    key = JobKey(f"{n:064x}", "s" * 16)
    inbox = "calls" if n % 2 else "memos"
    where = f"/srv/{inbox}/recording-{n:05d}.wav"
    when = now + n * 60
    return [
        (queries.UPSERT_ATTEMPT, queries.attempt_args(key, {}, "uploading", 1, when)),
        (
            queries.UPSERT_FILE,
            (where, inbox, 1, int(when * 1e9), n, key.digest, str(key), "uploading", None, when),
        ),
        (queries.JOB_DONE, (json.dumps(result, ensure_ascii=False), None, when, str(key))),
        (queries.FILE_DONE, ("txt", "[]", when, where)),
    ]


def sample_queries(vocab: np.ndarray, sample: dict) -> list[tuple[str, str, Filters]]:
    first = sample["segments"][3]["text"].rstrip(".").lower().split()
    return [
        ("rare word", str(vocab[8000]), Filters()),
        ("middling word", str(vocab[300]), Filters()),
        ("commonest word", str(vocab[0]), Filters()),
        ("phrase", f'"{first[1]} {first[2]} {first[3]}"', Filters()),
        ("prefix", str(vocab[2000])[:4] + "*", Filters()),
        ("word -excluded", f"{vocab[300]} -{vocab[1]}", Filters()),
        ("rare, --inbox", str(vocab[8000]), Filters(inbox="calls")),
        ("rare, --since", str(vocab[8000]), Filters(since=time.time() - 86400)),
        ("middling, --language", str(vocab[300]), Filters(language="english")),
    ]


def sizes(path: Path) -> tuple[int, int]:
    """Bytes of the index, and of everything else."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    db.close()
    index = sum(size for name, size in rows if name.startswith(INDEX_PARTS))
    return index, sum(size for _, size in rows) - index


def show_sizes(path: Path) -> None:
    index, rest = sizes(path)
    print(
        f"ledger {(index + rest) / 1e6:,.0f} MB: index {index / 1e6:,.0f} MB,"
        f" {100 * index / rest:.1f} % on top of the rest ({rest / 1e6:,.0f} MB)"
    )


def timed(ledger: Any, text: str, filters: Filters) -> tuple[float, float, int]:
    query = terms.parse(text)
    times = []
    found = 0
    for _ in range(7):
        start = time.perf_counter()
        found = len(ledger.search(query, filters, 20))
        times.append((time.perf_counter() - start) * 1000)
    return times[0], statistics.median(times[1:]), found


def show_times(ledger: Any, queries_: list[tuple[str, str, Filters]]) -> None:
    print(f"{'query':<22} {'text':<28} {'cold ms':>8} {'median ms':>10} {'hits':>5}")
    for name, text, filters in queries_:
        cold, median, found = timed(ledger, text, filters)
        print(f"{name:<22} {text[:28]:<28} {cold:8.1f} {median:10.1f} {found:5d}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transcripts", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--words", action="store_true", help="store word timestamps too")
    parser.add_argument("--dir", type=Path, help="where to build it (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the ledger (say where)")
    parser.add_argument("--ledger", type=Path, help="query this ledger, built before by --keep")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="then merge the index into one b-tree, measure again",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="search-bench-", dir=args.dir))
    path = args.ledger or work / "ledger.sqlite3"
    try:
        if args.ledger:
            rng = np.random.default_rng(35)
            vocab = vocabulary(rng)
            sample = transcript(rng, vocab, args.minutes, args.words)
        else:
            print(f"building {args.transcripts} transcripts of {args.minutes:g} min (synthetic)")
            start = time.perf_counter()
            vocab, sample = build(path, args.transcripts, args.minutes, args.words)
            print(f"built in {time.perf_counter() - start:.0f} s")
        show_sizes(path)
        if args.optimize:  # as a migration leaves it (fulltext.prepare)
            start = time.perf_counter()
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("INSERT INTO search_text (search_text) VALUES ('optimize')")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()
            print(f"optimized in {time.perf_counter() - start:.0f} s:", end=" ")
            show_sizes(path)
        queries_ = sample_queries(vocab, sample)
        ledger = SqliteLedger(path)
        try:
            show_times(ledger, queries_)
        finally:
            ledger.close()
    finally:
        if args.keep:
            print(f"kept: {path}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
