"""PostgreSQL's statements for ``dropscribe search`` (``search.py`` builds the hits): the
passages and steps' entries that match, ranked by ``ts_rank``; a passage's segments read
again to show a hit where its words are, as SQLite's are (``Searching._said``); and
``ts_headline``'s marks, for a passage matched by a word's stem alone (``bridges``:
``bridge``), which the words themselves do not mark.
"""

from __future__ import annotations

START, STOP = "\x02", "\x03"  # ts_headline's marks (control codes: never in text)
HEADLINE = f'StartSel="{START}", StopSel="{STOP}", HighlightAll=true'

# Transcript ``key``'s segments ``a`` to ``b`` (a jsonpath's slice: the ``?`` are key, a,
# b), how many it has and its text; the result read once (a jsonpath: 5 ms a hit where
# jsonb_array_elements took 13, for an hour's transcript)
SEGMENTS = """
WITH r AS MATERIALIZED (SELECT result::jsonb AS doc FROM jobs WHERE key = ?)
SELECT jsonb_path_query_array(r.doc, '$.segments[$a to $b]',
                              jsonb_build_object('a', ?::int, 'b', ?::int))::text,
       CASE jsonb_typeof(r.doc -> 'segments') WHEN 'array'
            THEN jsonb_array_length(r.doc -> 'segments') ELSE 0 END,
       r.doc ->> 'text'
FROM r
"""

_PICKED = (
    ' s.idx, s.start, s."end", s.speaker, s.body, s.config, q.query,'
    " d.language, d.transcribed, ts_rank(s.tsv, q.query) AS score"
)
_ORDERED = " ORDER BY score DESC, d.transcribed DESC, s.idx LIMIT ?"


def hits(where: str) -> str:
    """The matches, best first: ``where`` the filters' SQL (``AND ...``), applied to
    transcripts' passages and to steps' entries alike. Its arguments: the tsquery's text,
    HEADLINE, the filters' arguments and the limit (twice), the limit."""
    return (
        "WITH q AS (SELECT c.config, to_tsquery(c.config::regconfig, ?) AS query"  # noqa: S608 - our own SQL
        "  FROM (SELECT config FROM search_docs UNION SELECT config FROM search_steps) c)"
        ' SELECT h.key, h.step, h.shaping, h.idx, h.start, h."end", h.speaker,'
        "  ts_headline(h.config::regconfig, h.body, h.query, ?),"
        "  h.language, h.transcribed, h.score FROM ("
        f"  (SELECT s.key, NULL::text AS step, NULL::text AS shaping,{_PICKED}"
        "  FROM q JOIN search_segments s ON s.config = q.config AND s.tsv @@ q.query"
        f"  JOIN search_docs d ON d.key = s.key WHERE TRUE{where}{_ORDERED})"
        f"  UNION ALL (SELECT s.key, s.step, s.shaping,{_PICKED}"
        "  FROM q JOIN search_step_segments s ON s.config = q.config AND s.tsv @@ q.query"
        "  JOIN search_steps d ON d.key = s.key AND d.step = s.step AND d.shaping = s.shaping"
        "  WHERE EXISTS (SELECT 1 FROM step_outputs o WHERE o.key = d.key AND o.step = d.step"
        "   AND (o.shaping = d.shaping OR substr(o.shaping, 1, length(d.shaping) + 1)"
        f"   = d.shaping || '+')){where}{_ORDERED})"
        " ) h ORDER BY h.score DESC, h.transcribed DESC, h.idx LIMIT ?"
    )


def unmarked(headline: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A headline's text without its marks, and where they were."""
    text, marks, begun = [], [], 0
    length = 0
    for char in headline:
        if char == START:
            begun = length
        elif char == STOP:
            marks.append((begun, length))
        else:
            text.append(char)
            length += 1
    return "".join(text), tuple(marks)
