"""Does one index row a passage rank as one row a segment did? Built in memory.

    python bench/search_ranking.py [--recordings 500] [--segments 300] [--words 48]

SYNTHETIC speech (bench/search.py's Zipf vocabulary): ``--recordings`` recordings of
``--segments`` segments of 2-30 words (uniform: segments of mixed length), the speaker
changing at one segment in five among three. Forty two-word phrases are each said in
three recordings (once each, in a segment of random length) and their words apart in
thirty others. Two FTS5 tables as the ledger makes them (``unicode61 remove_diacritics
2``, bm25): one row a segment (the layout before), one row a passage (``fulltext.passages``
with ``--words``). For forty one-word queries (ranks 300 to 8,000): how many of the top
10 recordings (each at its best row) the two share, whether the first is the same, and
how long (words) the segment/passage of the first hit is, and how many of the top 10 are
among the 10 recordings that say the word most (or as often as the tenth). For the phrases: whether the
three recordings saying it come first, and rows found across a segment's end.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dropscribe.ledger import fulltext
from search import VOCABULARY, ZIPF, vocabulary

TABLE = "CREATE VIRTUAL TABLE {} USING fts5(text, speaker, content='', tokenize='unicode61 remove_diacritics 2')"
STRIDE = 1 << 20  # rowid: recording * STRIDE + segment


def recordings(args: argparse.Namespace) -> tuple[list[list[dict]], list[tuple[str, str]]]:
    rng = np.random.default_rng(351)
    vocab = vocabulary(rng)
    said = []
    for _ in range(args.recordings):
        segments, speaker = [], "A"
        for k in range(args.segments):
            if rng.random() < 0.2:
                speaker = str(rng.choice(["A", "B", "C"]))
            words = vocab[rng.choice(VOCABULARY, size=int(rng.integers(2, 31)), p=ZIPF)]
            text = " ".join(words)
            segments.append(
                {"start": k * 5.0, "end": k * 5.0 + 4.5, "text": text, "speaker": speaker}
            )
        said.append(segments)
    phrases = []
    for n in range(40):
        one, two = (str(w) for w in vocab[3000 + 50 * n : 3002 + 50 * n])
        phrases.append((one, two))
        chosen = rng.choice(len(said), size=33, replace=False)
        for at, r in enumerate(chosen):
            segment = said[r][int(rng.integers(len(said[r])))]
            words = segment["text"].split()
            place = int(rng.integers(len(words) + 1))
            if at < 3:  # said together
                words[place:place] = [one, two]
            else:  # apart: the second first, a word between
                words[place:place] = [two, "and", one]
            segment["text"] = " ".join(words)
    return said, phrases


def build(said: list[list[dict]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(TABLE.format("seg"))
    db.execute(TABLE.format("pas"))
    for r, segments in enumerate(said):
        db.executemany(
            "INSERT INTO seg (rowid, text, speaker) VALUES (?, ?, ?)",
            [(r * STRIDE + k, s["text"], s["speaker"]) for k, s in enumerate(segments)],
        )
        db.execute(
            "INSERT INTO pas (rowid, text, speaker) SELECT ? + p.first, p.body, p.who"
            f" FROM ({fulltext.passages('?')}) p WHERE p.k = p.first",
            (r * STRIDE, json.dumps({"segments": segments})),
        )
    return db


def ranked(db: sqlite3.Connection, table: str, match: str, top: int) -> list[tuple[int, int]]:
    """The first ``top`` recordings, each with its best row's rowid."""
    found: dict[int, int] = {}
    sql = f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rank"
    for (rowid,) in db.execute(sql, (match,)):
        found.setdefault(rowid // STRIDE, rowid)
        if len(found) == top:
            break
    return list(found.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recordings", type=int, default=500)
    parser.add_argument("--segments", type=int, default=300)
    parser.add_argument("--words", type=int, default=fulltext.PASSAGE_WORDS)
    args = parser.parse_args()
    fulltext.PASSAGE_WORDS = args.words
    said, phrases = recordings(args)
    db = build(said)
    rows = [db.execute(f"SELECT count(*) FROM {t}_docsize").fetchone()[0] for t in ("seg", "pas")]
    print(f"{sum(map(len, said)):,} segments, {rows[1]:,} passages (--words {args.words})")
    vocab = vocabulary(np.random.default_rng(351))
    shared, same_first, long_seg, long_pas = [], 0, [], []
    most: dict[str, list[int]] = {"seg": [], "pas": []}  # of the 10 saying it most
    for rank in np.linspace(300, 8000, 40).astype(int):
        word = str(vocab[rank])
        seg, pas = ranked(db, "seg", word, 10), ranked(db, "pas", word, 10)
        shared.append(len({r for r, _ in seg} & {r for r, _ in pas}))
        counts = [sum(x["text"].split().count(word) for x in s) for s in said]
        tenth = sorted(counts, reverse=True)[9]
        for table, top in (("seg", seg), ("pas", pas)):
            most[table].append(sum(counts[r] >= tenth for r, _ in top))
        same_first += seg[0][0] == pas[0][0]
        r, k = divmod(seg[0][1], STRIDE)
        long_seg.append(len(said[r][k]["text"].split()))
        r, first = divmod(pas[0][1], STRIDE)  # the passage's words (to its next speaker/bucket)
        body = db.execute(
            f"SELECT p.body FROM ({fulltext.passages('?')}) p WHERE p.first = ? LIMIT 1",
            (json.dumps({"segments": said[r]}), first),
        ).fetchone()[0]
        long_pas.append(len(body.split()))
    print(
        f"one word, 40 queries: top-10 recordings shared {statistics.mean(shared):.1f} of 10"
        f" (min {min(shared)}), same first recording {same_first}/40; first hit's row:"
        f" segment {statistics.mean(long_seg):.1f} words (all segments"
        f" {statistics.mean(len(s['text'].split()) for r in said for s in r):.1f}),"
        f" passage {statistics.mean(long_pas):.1f} words; of the top 10, among the 10"
        f" recordings saying it most: segments {statistics.mean(most['seg']):.1f},"
        f" passages {statistics.mean(most['pas']):.1f}"
    )
    for table in ("seg", "pas"):
        first, across = 0, 0
        for one, two in phrases:
            top = ranked(db, table, f'"{one} {two}"', 50)
            first += (
                sorted(r for r, _ in top[:3])
                == sorted(
                    r for r, s in enumerate(said) if any(f"{one} {two}" in x["text"] for x in s)
                )[:3]
            )
            across += max(0, len(top) - 3)
        print(
            f"{table}: phrases whose 3 recordings come first {first}/40, other recordings {across}"
        )


if __name__ == "__main__":
    main()
