"""``bench/search.py`` on PostgreSQL: query time, and what the index adds to the ledger.

    python bench/search_pg.py postgresql://user:password@host/db [--transcripts 2000]
        [--minutes 60] [--words]

The same SYNTHETIC transcripts, stored by the ledger's own statements (``search.stored``)
in a database of its own on that server (the role must be allowed to create one), so
the triggers index them as ``finish`` would; dropped after. Size: after a VACUUM,
``pg_total_relation_size`` (heap, indexes, TOAST) of the index's tables (search_segments,
search_docs, search_steps, search_step_segments) and of files_key, against every other
table of the ledger. Then ``PostgresLedger.search`` for the same queries.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dropscribe.ledger import queries
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.vocab.config import SharedLedger
from search import sample_queries, show_times, stored, transcript, vocabulary

INDEX_TABLES = ("search_segments", "search_docs", "search_steps", "search_step_segments")


def sizes(db: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int]:
    """Bytes of the index, and of everything else, in the current database's schema."""
    rows = db.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
    ).fetchall()
    files_key = db.execute("SELECT pg_relation_size('files_key')").fetchone()
    extra = int(files_key[0]) if files_key else 0
    index = sum(int(n) for name, n in rows if name in INDEX_TABLES) + extra
    return index, sum(int(n) for _, n in rows) - index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "url", help="a PostgreSQL URL (with its password) of a role that may CREATE DATABASE"
    )
    parser.add_argument("--transcripts", type=int, default=2_000)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--words", action="store_true", help="store word timestamps too")
    parser.add_argument("--keep", action="store_true", help="keep the database (say which)")
    args = parser.parse_args()
    info = psycopg.conninfo.conninfo_to_dict(args.url)
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    password = str(info.pop("password", "") or "") or None
    url = f"postgresql://{info.get('user', '')}@{info.get('host', '')}:{info.get('port', 5432)}/{name}"
    try:
        settings = SharedLedger(url, password, "bench", 60.0)
        ledger = PostgresLedger(settings, Places([("calls", Path("/srv/calls"))]), daemon=False)
        rng = np.random.default_rng(35)
        vocab = vocabulary(rng)
        sample: dict = {}
        now = time.time() - args.transcripts * 60
        print(f"building {args.transcripts} transcripts of {args.minutes:g} min (synthetic)")
        start = time.perf_counter()
        with psycopg.connect(url, password=password) as db:
            for n in range(args.transcripts):
                result = transcript(rng, vocab, args.minutes, args.words)
                sample = sample or result
                for sql, values in stored(n, result, now):
                    db.execute(queries.for_psycopg(sql), values)
                if n % 100 == 99:
                    db.commit()
                if n % 500 == 499:
                    print(f"  {n + 1} transcripts, {time.perf_counter() - start:.0f} s", flush=True)
            db.commit()
            db.autocommit = True
            db.execute("VACUUM ANALYZE")
            index, rest = sizes(db)
            passages = db.execute("SELECT count(*) FROM search_segments").fetchone()
        print(
            f"built in {time.perf_counter() - start:.0f} s; {passages[0] if passages else 0} index rows"
        )
        print(
            f"ledger {(index + rest) / 1e6:,.0f} MB: index {index / 1e6:,.0f} MB,"
            f" {100 * index / rest:.1f} % on top of the rest ({rest / 1e6:,.0f} MB)"
        )
        try:
            show_times(ledger, sample_queries(vocab, sample))
        finally:
            ledger.close()
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            with psycopg.connect(args.url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
