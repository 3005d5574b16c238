"""PostgreSQL's search index of transcripts (``fulltext.py`` says what both backends keep).

``search_segments`` holds one row a **passage**, as SQLite's ``search_text`` does and cut
by the same rule (``fulltext.passages``): consecutive segments of one speaker, a new one
each time the words said so far pass a multiple of ``PASSAGE_WORDS``; ``idx`` is the
index of its first segment, ``start`` that segment's start, ``end`` its last segment's
end, ``body`` its segments' text joined, ``tsv`` (GIN) made with the text search
configuration of the transcript's language where PostgreSQL has one (``english``,
``german`` ...), ``simple`` otherwise. A transcript without segments is one row, index
0, untimed. A ledger indexed before with one row a segment is indexed again, once, when
it is opened (``outdated``, ``unmade``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dropscribe.ledger.migrations import Execute

PASSAGE = "string_agg("  # in this layout's search_index() (one row a passage) only


def outdated(execute: Execute) -> bool:
    """Whether the index was made one row a segment (its function lacks ``PASSAGE``)."""
    rows = execute("SELECT prosrc FROM pg_proc WHERE oid = to_regproc('search_index')", ())
    return bool(rows) and PASSAGE not in str(rows[0][0])


def unmade(execute: Execute) -> None:
    """The transcripts' index and its trigger gone (to be made again, and refilled)."""
    execute("DROP TRIGGER IF EXISTS search_index ON jobs", ())
    execute("DELETE FROM search_segments", ())
    execute("DELETE FROM search_docs", ())


def statements(languages: Mapping[str, str], words: int) -> list[str]:
    """The index, its functions and its trigger: ``languages`` maps a transcript's
    language to a configuration's name, ``words`` is ``PASSAGE_WORDS``."""
    # no percent sign nor question mark below: psycopg would read them as placeholders
    names = " ".join(f"WHEN '{code}' THEN '{full}'" for code, full in languages.items())
    config = f"""
CREATE OR REPLACE FUNCTION search_config(language text) RETURNS regconfig
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.oid::regconfig FROM pg_catalog.pg_ts_config c
                     WHERE c.cfgnamespace = 'pg_catalog'::regnamespace
                       AND c.cfgname = (CASE lower(language) {names} ELSE lower(language) END)),
                    'simple'::regconfig)
$$"""  # noqa: S608 - the names above
    index = f"""
CREATE OR REPLACE FUNCTION search_index() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc jsonb;
    cfg regconfig;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM search_segments WHERE key = OLD.key;
        DELETE FROM search_docs WHERE key = OLD.key;
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
        cfg := search_config(doc ->> 'language');
        INSERT INTO search_docs (key, id, language, config, transcribed)
        VALUES (NEW.key, NULL, doc ->> 'language', cfg::text, coalesce(NEW.updated, 0));
        IF (CASE jsonb_typeof(doc -> 'segments') WHEN 'array'
            THEN jsonb_array_length(doc -> 'segments') ELSE 0 END) = 0 THEN
            INSERT INTO search_segments (key, idx, start, "end", speaker, body, config, tsv)
            VALUES (NEW.key, 0, NULL, NULL, NULL, coalesce(doc ->> 'text', ''), cfg::text,
                    to_tsvector(cfg, coalesce(doc ->> 'text', '')));
            RETURN NULL;
        END IF;
        INSERT INTO search_segments (key, idx, start, "end", speaker, body, config, tsv)
        SELECT NEW.key, p.first,
               CASE jsonb_typeof(p.head -> 'start') WHEN 'number'
                    THEN (p.head ->> 'start')::float8 END,
               CASE jsonb_typeof(p.tail -> 'end') WHEN 'number'
                    THEN (p.tail ->> 'end')::float8 END,
               p.who, p.body, cfg::text, to_tsvector(cfg, p.body)
        FROM (
            SELECT g.first, g.who, string_agg(g.t, ' ' ORDER BY g.k) AS body,
                   (array_agg(g.v ORDER BY g.k))[1] AS head,
                   (array_agg(g.v ORDER BY g.k DESC))[1] AS tail
            FROM (
                SELECT b.k, b.v, b.t, b.who,
                       max(CASE WHEN b.begins THEN b.k END)
                           OVER (ORDER BY b.k ROWS UNBOUNDED PRECEDING) AS first
                FROM (
                    SELECT c.k, c.v, c.t, c.who,
                           (lag(c.b) OVER (ORDER BY c.k) IS DISTINCT FROM c.b
                            OR lag(c.who) OVER (ORDER BY c.k) IS DISTINCT FROM c.who) AS begins
                    FROM (
                        SELECT l.k, l.v, l.t, l.who,
                               (sum(l.n) OVER (ORDER BY l.k ROWS UNBOUNDED PRECEDING) - l.n)
                                   / {words:d} AS b
                        FROM (
                            SELECT (s.n - 1)::int AS k, s.seg AS v,
                                   coalesce(s.seg ->> 'text', '') AS t, s.seg ->> 'speaker' AS who,
                                   length(btrim(coalesce(s.seg ->> 'text', '')))
                                   - length(replace(btrim(coalesce(s.seg ->> 'text', '')), ' ', ''))
                                   + (btrim(coalesce(s.seg ->> 'text', '')) <> '')::int AS n
                            FROM jsonb_array_elements(doc -> 'segments')
                                 WITH ORDINALITY AS s(seg, n)
                            WHERE jsonb_typeof(s.seg) = 'object'
                        ) l
                    ) c
                ) b
            ) g
            GROUP BY g.first, g.who
        ) p;
    EXCEPTION WHEN others THEN
        RAISE WARNING USING MESSAGE = 'dropscribe: a transcript was stored but not indexed'
            ' for search (' || NEW.key || '): ' || SQLERRM;
    END;
    RETURN NULL;
END
$$"""  # noqa: S608 - our own SQL, a number in it
    return [
        "CREATE INDEX IF NOT EXISTS search_segments_tsv ON search_segments USING gin (tsv)",
        config,
        index,
        (
            "CREATE TRIGGER search_index AFTER INSERT OR DELETE OR UPDATE OF result, state ON jobs"
            " FOR EACH ROW EXECUTE FUNCTION search_index()"
        ),
    ]
