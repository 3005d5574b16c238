"""The search index (``dropscribe search``), kept by the ledger itself.

Both backends index a transcript from triggers on the ``jobs`` table: when a job's
``result`` is written (``JOB_DONE``; a row copied in by ``ledger migrate``), in the same
transaction, whichever dropscribe wrote it; when it is rewritten or deleted, its old
entries go. So the index is never out of date, and a transcript is never refused for
it (a result the triggers cannot read is stored unindexed: PostgreSQL says so in a
warning, SQLite skips what is not JSON).

- SQLite: ``search_text``, an FTS5 table without content (the text is the jobs'
  already: the index holds only tokens), one row a **passage**: consecutive segments of
  one speaker, a new one each time the words said so far pass a multiple of
  ``PASSAGE_WORDS`` (``passages``: the same SQL finds a hit's segments again). Fewer
  rows than segments: fewer rowids and position-list headers in every term's list, a
  smaller sizes table, while bm25 still weighs a passage by its length (and they are of
  like lengths). Its rowid is the transcript's ``search_docs.id`` plus the index of the
  passage's first segment: each transcript's entries take the rowids after the last
  transcript's (the deltas FTS5 stores stay short; a transcript's ``id``, its first
  rowid, is the greatest at or below each of its rowids); columns ``text`` and
  ``speaker``, tokenized ``unicode61 remove_diacritics 2`` (any language, case and
  accents folded). A ledger indexed before with one row a segment (or rowids of
  ``id << 24``) is indexed again.
- PostgreSQL: ``search_segments``, one row a passage cut by the same rule (its text, its
  first segment's index and start, its speaker and a ``tsvector``, GIN, made with the
  text search configuration of the transcript's language): ``fulltext_pg.py``. A ledger
  indexed before with one row a segment is indexed again.

A transcript without segments (a text-only answer) is one entry, index 0, untimed.

A step's result (a summary, a translation) is indexed as well: ``fulltext_steps.py``.

``prepare`` makes what is missing; a ledger whose transcripts were stored before the
index existed is indexed then, once (every done job's result written again, so the
triggers do it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.ledger import ftsql, fulltext_pg, fulltext_steps
from dropscribe.ledger.schema import Dialect

if TYPE_CHECKING:
    from dropscribe.ledger.migrations import Execute

OLD_SHIFT = "<< 24"  # in the triggers of the index's first layout (rowid: id << 24 + index)
PASSAGE = "group_concat("  # in the triggers of this layout (one row a passage) only
PASSAGE_WORDS = 48  # a passage ends where the words said so far pass a multiple of this

# ISO 639-1 codes (and names, as verbose_json gives them) -> PostgreSQL's configurations
LANGUAGES = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish",
    "nl": "dutch", "en": "english", "fi": "finnish", "fr": "french", "de": "german",
    "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish",
    "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: off


def same_language(name: str) -> list[str]:
    """Every way a transcript may name ``name``'s language: ``de``, ``german``."""
    low = name.strip().lower()
    found = {low, LANGUAGES.get(low, low)}
    found.update(code for code, full in LANGUAGES.items() if full == low)
    return sorted(found)


def prepare(execute: Execute, dialect: Dialect, *, fresh: bool) -> None:
    """Make the index where it is missing and, in a ledger that was not ``fresh`` (just
    made), index what it holds (in the caller's transaction, after the layout's tables
    are made)."""
    if dialect is Dialect.SQLITE:  # the table and its triggers are made together
        made = bool(execute("PRAGMA table_info(search_text)", ()))  # a pragma: no scan
        if made and _outdated(execute):
            _unmade(execute)
            made = False
        statements = _sqlite()
    else:
        made = execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'search_index'"
            " AND tgrelid = 'jobs'::regclass",
            (),
        )[0][0]
        if made and fulltext_pg.outdated(execute):
            fulltext_pg.unmade(execute)
            made = False
        statements = fulltext_pg.statements(LANGUAGES, PASSAGE_WORDS)
    if not made:
        for statement in statements:
            execute(statement, ())
        if not fresh:  # the transcripts stored before: each written again, and so indexed
            execute(
                "UPDATE jobs SET result = result WHERE state = 'done' AND result IS NOT NULL", ()
            )
    fulltext_steps.prepare(execute, dialect, fresh=fresh)
    if not made and not fresh and dialect is Dialect.SQLITE:  # one b-tree: 3 % less room
        execute("INSERT INTO search_text (search_text) VALUES ('optimize')", ())


def _outdated(execute: Execute) -> bool:
    """Whether the SQLite index has an older layout: one row a segment, or the first
    layout's rowids (``id << 24``)."""
    sql = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?"
    rows = execute(sql, ("search_jobs_insert",))
    return bool(rows) and (OLD_SHIFT in str(rows[0][0]) or PASSAGE not in str(rows[0][0]))


def _unmade(execute: Execute) -> None:
    """The SQLite index and its triggers gone (to be made again, and everything indexed)."""
    for table in ("jobs", "steps"):
        for event in ("insert", "update", "delete"):
            execute(f"DROP TRIGGER IF EXISTS search_{table}_{event}", ())
    execute("DROP TABLE search_text", ())
    execute("DELETE FROM search_docs", ())
    execute("DELETE FROM search_steps", ())


# ---------------------------------------------------------------- SQLite


def _sqlite() -> list[str]:
    table = (
        "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5(text, speaker,"
        " content='', tokenize='unicode61 remove_diacritics 2')"
    )
    return [table, *ftsql.triggers("search_jobs", "jobs", _index, _forget)]


def _entries(row: str, delete: bool) -> str:
    """Statements inserting (or, for a contentless table, deleting with the very values
    inserted) the entries of ``row``'s transcript: its segments, or its text alone."""
    safe = ftsql.safe(row)
    into, command = ftsql.inserting(delete)
    segments = (
        f"{into} SELECT {command}d.id + p.first, p.body, p.who"  # noqa: S608 - our own SQL
        f" FROM search_docs d, ({passages(safe)}) p"
        f" WHERE d.key = {row}.key AND p.k = p.first;"
    )
    text_only = (
        f"{into} SELECT {command}d.id, coalesce(json_extract({safe}, '$.text'), ''),"  # noqa: S608 - our own SQL
        f" NULL FROM search_docs d WHERE d.key = {row}.key"
        f" AND coalesce(json_array_length({safe}, '$.segments'), 0) = 0;"
    )
    return segments + " " + text_only


def passages(result: str) -> str:
    """A SELECT of the segments of ``result`` (SQL: a transcript's JSON) with their
    passage: ``k`` the segment's index, ``v`` the segment, ``who`` its speaker,
    ``first`` the index of its passage's first segment, ``body`` the passage's text (its
    segments' joined). A passage begins at the first segment, at a change of speaker,
    and where the words said before the segment pass a multiple of PASSAGE_WORDS."""
    text = "coalesce(json_extract(s.value, '$.text'), '')"
    trimmed = f"trim({text})"
    words = f"(length({trimmed}) - length(replace({trimmed}, ' ', '')) + ({trimmed} <> ''))"
    listed = (  # the segments, each with its count of words
        f"SELECT s.key AS k, s.value AS v, {text} AS t, json_extract(s.value, '$.speaker')"  # noqa: S608 - our own SQL
        f" AS who, {words} AS n FROM json_each({result}, '$.segments') s"
        " WHERE s.type = 'object'"
    )
    counted = (  # b: the bucket of PASSAGE_WORDS the words before it fall in
        "SELECT k, v, t, who, (sum(n) OVER (ORDER BY k ROWS UNBOUNDED PRECEDING) - n)"  # noqa: S608 - our own SQL
        f" / {PASSAGE_WORDS} AS b FROM ({listed})"
    )
    begun = (  # whether a passage begins at it
        "SELECT k, v, t, who, (lag(b) OVER (ORDER BY k) IS NOT b"  # noqa: S608 - our own SQL
        f" OR lag(who) OVER (ORDER BY k) IS NOT who) AS begins FROM ({counted})"
    )
    grouped = (  # first: where its passage begins
        "SELECT k, v, t, who, max(CASE WHEN begins THEN k END)"  # noqa: S608 - our own SQL
        f" OVER (ORDER BY k ROWS UNBOUNDED PRECEDING) AS first FROM ({begun})"
    )
    return (
        f"SELECT k, v, who, first, {PASSAGE}t, ' ') OVER (PARTITION BY first ORDER BY k"  # noqa: S608 - our own SQL
        f" ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS body FROM ({grouped})"
    )


# A transcript's first rowid: after the last transcript's entries (it has one a segment,
# or one for its text alone; ``safe`` below, for that transcript's job)
NEXT_DOC = (
    "coalesce((SELECT d.id + max(1, coalesce(json_array_length(CASE WHEN json_valid(j.result)"
    " THEN j.result ELSE '{}' END, '$.segments'), 0)) FROM search_docs d JOIN jobs j"
    " ON j.key = d.key ORDER BY d.id DESC LIMIT 1), 0)"
)


def _index(row: str) -> str:
    safe = ftsql.safe(row)
    doc = (
        "INSERT INTO search_docs (key, id, language, config, transcribed)"
        f" SELECT {row}.key, {NEXT_DOC},"
        f" json_extract({safe}, '$.language'), 'unicode61', coalesce({row}.updated, 0)"
        f" WHERE {row}.state = 'done' AND json_valid({row}.result)"
        f" AND json_type({safe}) = 'object';"
    )
    return doc + " " + _entries(row, delete=False)


def _forget(row: str) -> str:
    forget = f" DELETE FROM search_docs WHERE key = {row}.key;"  # noqa: S608 - new or old
    return _entries(row, delete=True) + forget
