"""The steps' results in the search index (``fulltext.py``'s): a summary or a translation
stored in ``steps`` (done) is indexed by triggers on that table, in the same transaction,
as a transcript is by those on ``jobs``: ``search_steps`` names each result; SQLite's
entries go into ``search_text`` (a summary one entry, its markdown, untimed; a translation
one a cue, its text and speaker) under negative rowids, each result's below the last
one's (its ``id`` the lowest), so they never meet a transcript's; PostgreSQL's into
``search_step_segments`` (with each cue's times) with the text search configuration of
the result's language (a translation's, else the transcript's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.ledger import ftsql
from dropscribe.ledger.schema import Dialect

if TYPE_CHECKING:
    from dropscribe.ledger.migrations import Execute


def prepare(execute: Execute, dialect: Dialect, *, fresh: bool) -> None:
    """The steps' results (summaries, translations) indexed as transcripts are, by
    triggers on ``steps``; a ledger whose steps were done before is indexed once."""
    if dialect is Dialect.SQLITE:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?"
        made = execute(sql, ("search_steps_insert",))[0][0]
        statements = _sqlite_steps()
    else:
        made = execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'search_steps_index'"
            " AND tgrelid = 'steps'::regclass",
            (),
        )[0][0]
        statements = _postgres_steps()
    if made:
        return
    for statement in statements:
        execute(statement, ())
    if not fresh:
        execute("UPDATE steps SET result = result WHERE state = 'done' AND result IS NOT NULL", ())


def _sqlite_steps() -> list[str]:
    return ftsql.triggers("search_steps", "steps", _step_index, _step_forget)


def _same_step(row: str) -> str:
    return f"d.key = {row}.key AND d.step = {row}.step AND d.shaping = {row}.shaping"


def _step_entries(row: str, delete: bool) -> str:
    """A translation's cues ([start, end, text, speaker, turn]) or a summary's markdown."""
    safe = ftsql.safe(row)
    into, command = ftsql.inserting(delete)
    cues = (
        f"{into} SELECT {command}d.id + c.key,"  # noqa: S608 - our own SQL
        " coalesce(json_extract(c.value, '$[2]'), ''), json_extract(c.value, '$[3]')"
        f" FROM search_steps d, json_each({safe}, '$.cues') c"
        f" WHERE {_same_step(row)} AND c.type = 'array';"
    )
    summary = (
        f"{into} SELECT {command}d.id, json_extract({safe}, '$.markdown'), NULL"  # noqa: S608 - our own SQL
        f" FROM search_steps d WHERE {_same_step(row)}"
        f" AND json_type({safe}, '$.markdown') = 'text';"
    )
    return cues + " " + summary


def _step_index(row: str) -> str:
    safe = ftsql.safe(row)
    doc = (
        "INSERT INTO search_steps (key, step, shaping, id, language, config, transcribed)"  # noqa: S608 - our own SQL
        f" SELECT {row}.key, {row}.step, {row}.shaping,"
        " (SELECT coalesce(min(id), 0) FROM search_steps)"
        f" - max(1, coalesce(json_array_length({safe}, '$.cues'), 0)),"
        f" coalesce(json_extract({safe}, '$.language'),"
        f" (SELECT language FROM search_docs WHERE key = {row}.key)),"
        f" 'unicode61', coalesce({row}.updated, 0)"
        f" WHERE {row}.state = 'done' AND json_valid({row}.result)"
        f" AND json_type({safe}) = 'object';"
    )
    return doc + " " + _step_entries(row, delete=False)


def _step_forget(row: str) -> str:
    forget = (
        f" DELETE FROM search_steps WHERE key = {row}.key AND step = {row}.step"  # noqa: S608 - new or old
        f" AND shaping = {row}.shaping;"
    )
    return _step_entries(row, delete=True) + forget


def _postgres_steps() -> list[str]:
    index = """
CREATE OR REPLACE FUNCTION search_steps_index() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
    cfg regconfig;
    lang text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM search_step_segments
        WHERE key = OLD.key AND step = OLD.step AND shaping = OLD.shaping;
        DELETE FROM search_steps WHERE key = OLD.key AND step = OLD.step AND shaping = OLD.shaping;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    IF NEW.result IS NULL OR NEW.state <> 'done' THEN
        RETURN NULL;
    END IF;
    BEGIN  -- a result that cannot be read is stored all the same, unindexed
        doc := NEW.result::jsonb;
        IF jsonb_typeof(doc) <> 'object' THEN
            RETURN NULL;
        END IF;
        lang := coalesce(doc ->> 'language',
                         (SELECT language FROM search_docs WHERE key = NEW.key));
        cfg := search_config(lang);
        INSERT INTO search_steps (key, step, shaping, id, language, config, transcribed)
        VALUES (NEW.key, NEW.step, NEW.shaping, NULL, lang, cfg::text, coalesce(NEW.updated, 0));
        IF jsonb_typeof(doc -> 'markdown') = 'string' THEN
            INSERT INTO search_step_segments
                (key, step, shaping, idx, start, "end", speaker, body, config, tsv)
            VALUES (NEW.key, NEW.step, NEW.shaping, 0, NULL, NULL, NULL, doc ->> 'markdown',
                    cfg::text, to_tsvector(cfg, doc ->> 'markdown'));
        END IF;
        INSERT INTO search_step_segments
            (key, step, shaping, idx, start, "end", speaker, body, config, tsv)
        SELECT NEW.key, NEW.step, NEW.shaping, (c.n - 1)::int,
               CASE jsonb_typeof(c.cue -> 0) WHEN 'number' THEN (c.cue ->> 0)::float8 END,
               CASE jsonb_typeof(c.cue -> 1) WHEN 'number' THEN (c.cue ->> 1)::float8 END,
               c.cue ->> 3, coalesce(c.cue ->> 2, ''), cfg::text,
               to_tsvector(cfg, coalesce(c.cue ->> 2, ''))
        FROM jsonb_array_elements(CASE jsonb_typeof(doc -> 'cues')
                                  WHEN 'array' THEN doc -> 'cues' ELSE '[]'::jsonb END)
             WITH ORDINALITY AS c(cue, n)
        WHERE jsonb_typeof(c.cue) = 'array';
    EXCEPTION WHEN others THEN
        RAISE WARNING USING MESSAGE = 'dropscribe: a step result was stored but not indexed'
            ' for search (' || NEW.key || ' ' || NEW.step || '): ' || SQLERRM;
    END;
    RETURN NULL;
END
$$"""
    return [
        (
            "CREATE INDEX IF NOT EXISTS search_step_segments_tsv ON search_step_segments"
            " USING gin (tsv)"
        ),
        index,
        (
            "CREATE TRIGGER search_steps_index AFTER INSERT OR DELETE OR UPDATE OF result, state"
            " ON steps FOR EACH ROW EXECUTE FUNCTION search_steps_index()"
        ),
    ]
