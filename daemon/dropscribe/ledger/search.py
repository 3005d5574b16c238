"""``dropscribe search``'s read of the ledger: the segments that match a query, best
first, each with its transcript's places (every path the ledger knows for it).

The index is ``fulltext.py``'s (SQLite: a row a passage, shown at the segments in it
that hold the query's words). SQLite ranks with FTS5's bm25 where every term of the
query is in fewer than ``CANDIDATES`` rows, and otherwise lists the latest
transcripts' matches first (bm25 reads every place of every term before it answers: for
a word said a million times, a second); PostgreSQL ranks every match with ``ts_rank``.
A backend mixes in ``Searching`` (through ``queries.Reads``) and provides ``_rows``,
``_shown`` and ``shared``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dropscribe.ledger import fulltext, search_pg, terms

if TYPE_CHECKING:
    from dropscribe.ledger.terms import Query

SUMMARY = "summary"  # vocab.steps' name of the summary step
# a step result whose sidecars show it now (o: step_outputs; its shaping may carry "+glossary")
SHOWS = "(o.shaping = ? OR substr(o.shaping, 1, length(?) + 1) = ? || '+')"
CANDIDATES = 1_000  # SQLite: a term in more rows is not ranked (the docstring)


@dataclass(frozen=True)
class Filters:
    """What a hit must also be: in ``inbox``; recorded (the file's modification time),
    or with ``transcribed`` transcribed, between ``since`` and ``until`` (epoch seconds);
    said by a speaker whose label holds the words of ``speaker``; in ``language``."""

    inbox: str | None = None
    since: float | None = None
    until: float | None = None
    transcribed: bool = False
    speaker: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Place:
    """A path the ledger knows for a transcript's recording (as this host names it)."""

    path: str
    inbox: str
    mtime: float
    updated: float


@dataclass(frozen=True)
class Hit:
    key: str
    idx: int  # the segment's index in its transcript
    start: float | None  # seconds into the recording (None: a transcript without times)
    end: float | None
    speaker: str | None
    text: str
    marks: tuple[tuple[int, int], ...]  # where in ``text`` the query's words are
    language: str | None
    transcribed: float
    score: float  # higher is better
    places: tuple[Place, ...]  # the latest first
    step: str | None = None  # found in a step's result (summary, translate:de), not the transcript
    sidecar: str | None = None  # that step's sidecar showing it (name.summary.md, name.de.txt)


@runtime_checkable
class Search(Protocol):
    """What ``dropscribe search`` asks of a ledger."""

    where: str

    def search(self, query: Query, filters: Filters, limit: int) -> list[Hit]: ...

    def close(self) -> None: ...


class Searching:
    """``search`` for a backend with ``_rows``, ``_shown`` and ``shared``."""

    shared: bool

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _shown(self, text: str) -> str:
        return text

    def search(self, query: Query, filters: Filters, limit: int) -> list[Hit]:
        """The best ``limit`` segments that match ``query`` and ``filters``."""
        if query.empty or limit < 1:
            return []
        found = (
            self._postgres(query, filters, limit)
            if self.shared
            else self._sqlite(query, filters, limit)
        )
        places: dict[str, tuple[Place, ...]] = {}
        for hit in found:
            if hit.key not in places:
                places[hit.key] = self._places(hit.key)
        return [_with(hit, places[hit.key]) for hit in found]

    def _step_hit(self, key: str, step: str, shaping: str, idx: int) -> dict[str, Any]:
        """A step result's entry (its text, times, speaker) and the sidecar showing it."""
        rows = self._rows(
            "SELECT result FROM steps WHERE key = ? AND step = ? AND shaping = ?",
            (key, step, shaping),
        )
        result = json.loads(rows[0][0]) if rows and rows[0][0] else {}
        item: dict[str, Any] = {"text": result.get("markdown", "")}
        cues = result.get("cues")
        if isinstance(cues, list) and idx < len(cues) and isinstance(cues[idx], list):
            cue = [*cues[idx], None, None, None, None][:4]
            item = {"start": cue[0], "end": cue[1], "text": cue[2], "speaker": cue[3]}
        outputs = self._rows(
            f"SELECT outputs FROM step_outputs o WHERE o.key = ? AND o.step = ? AND {SHOWS}"  # noqa: S608 - our own SQL
            " ORDER BY o.updated DESC",
            (key, step, shaping, shaping, shaping),
        )
        wanted = ".summary.md" if step == SUMMARY else ".txt"
        if outputs:  # the latest; its paths as this host names them
            paths = [self._shown(str(p)) for p in json.loads(outputs[0][0] or "[]")]
            item["sidecar"] = next(
                (p for p in paths if p.endswith(wanted)), paths[0] if paths else None
            )
        return item

    def _sqlite(self, query: Query, filters: Filters, limit: int) -> list[Hit]:
        match = terms.fts5(query)
        if filters.speaker and (said := terms.fts5_phrase(filters.speaker, "speaker")):
            match += f" AND {said}"
        where, args = _filters(filters, _SQLITE_DOC)
        # bm25 reads the whole list of every term's places first: ranked only when each
        # is in fewer than CANDIDATES rows; else the latest transcripts first
        ranked = not self._common(query)
        rank, order = ("f.rank", "f.rank, f.rowid DESC") if ranked else ("0", "f.rowid DESC")
        rows = self._rows(
            f"SELECT f.rowid, {rank}, {_SQLITE_DOC['key']}, {_SQLITE_DOC['language']},"  # noqa: S608 - our own SQL
            f" {_SQLITE_DOC['transcribed']}, t.step, t.shaping, coalesce(d.id, t.id)"
            " FROM search_text f LEFT JOIN search_docs d ON f.rowid >= 0"
            " AND d.id = (SELECT max(id) FROM search_docs WHERE id <= f.rowid)"
            " LEFT JOIN search_steps t ON f.rowid < 0"
            " AND t.id = (SELECT max(id) FROM search_steps WHERE id <= f.rowid)"
            " WHERE search_text MATCH ? AND (d.key IS NOT NULL OR (t.key IS NOT NULL AND"
            " EXISTS (SELECT 1 FROM step_outputs o WHERE o.key = t.key AND o.step = t.step"
            " AND (o.shaping = t.shaping OR substr(o.shaping, 1, length(t.shaping) + 1)"
            f" = t.shaping || '+')))){where} ORDER BY {order} LIMIT ?",
            (match, *args, limit),
        )
        hits = []
        for rowid, rank, key, language, transcribed, step, shaping, first in rows:
            idx = rowid - first
            if step is not None:
                item = self._step_hit(key, step, shaping, idx)
                hits.append(_hit(key, idx, item, query, language, transcribed, -float(rank), step))
                continue
            idx, item = self._said(key, idx, query)
            hits.append(_hit(key, idx, item, query, language, transcribed, -float(rank)))
        return hits

    def _said(self, key: str, first: int, query: Query) -> tuple[int, dict[str, Any]]:
        """Where the query's words are in transcript ``key``'s passage from segment
        ``first``: ``terms.span``'s segments as one (text joined, first start to last end);
        without segments, the text. The passage lies within the segments from ``first`` of
        its speaker with fewer than PASSAGE_WORDS words before them (read at once: the
        passages' SQL took 10 ms a hit), and so does the earliest-ending span."""
        found, count, text = self._passage(key, first)
        if not count:
            return first, {"text": text}
        segments, words = list[tuple[int, dict[str, Any]]](), 0
        for n, segment in enumerate(json.loads(found or "[]")):
            if isinstance(segment, dict):
                turned = segments and segment.get("speaker") != segments[0][1].get("speaker")
                if segments and (words >= fulltext.PASSAGE_WORDS or turned):
                    break
                segments.append((first + n, segment))
                words += len(str(segment.get("text") or "").split())
        if not segments:
            return first, {}
        texts = [str(segment.get("text") or "").strip() for _, segment in segments]
        begin, end = terms.span(texts, query)
        said = segments[begin : end + 1]
        return said[0][0], {
            "start": said[0][1].get("start"),
            "end": said[-1][1].get("end"),
            "speaker": said[0][1].get("speaker"),
            "text": " ".join(t for t in texts[begin : end + 1] if t),
        }

    def _passage(self, key: str, first: int) -> tuple[str | None, int, str | None]:
        """Transcript ``key``'s segments from ``first`` on (PASSAGE_WORDS of them, as a
        JSON array), how many it has, and its text."""
        words = fulltext.PASSAGE_WORDS
        if self.shared:
            row = self._rows(search_pg.SEGMENTS, (key, first, first + words - 1))[0]
            return row[0], int(row[1] or 0), row[2]
        paths = [f"$.segments[{first + n}]" for n in range(words)]
        row = self._rows(
            f"SELECT json_extract(result, {', '.join('?' * len(paths))}),"  # noqa: S608 - our own SQL
            " json_array_length(result, '$.segments'), json_extract(result, '$.text')"
            " FROM jobs WHERE key = ?",
            (*paths, key),
        )[0]
        return row[0], int(row[1] or 0), row[2]

    def _common(self, query: Query) -> bool:
        """Whether a word of ``query`` (excluded ones too: bm25 counts them) is in at
        least CANDIDATES rows (each checked by reading that many of its places)."""
        words = {(w, t.prefix and w == t.words[-1]) for t in query.terms for w in t.words}
        for word, prefix in sorted(words):
            alone = terms.fts5(terms.Query((terms.Term((word,), prefix),)))
            found = self._rows(
                "SELECT count(*) FROM (SELECT rowid FROM search_text"
                " WHERE search_text MATCH ? LIMIT ?)",
                (alone, CANDIDATES),
            )
            if found[0][0] >= CANDIDATES:
                return True
        return False

    def _postgres(self, query: Query, filters: Filters, limit: int) -> list[Hit]:
        where, args = _filters(filters, _DOC)
        if filters.speaker:
            where += (
                " AND to_tsvector('simple', coalesce(s.speaker, ''))"
                " @@ phraseto_tsquery('simple', ?)"
            )
            args.append(filters.speaker)
        rows = self._rows(
            search_pg.hits(where),
            (terms.tsquery(query), search_pg.HEADLINE, *args, limit, *args, limit, limit),
        )
        hits = []
        for key, step, shaping, idx, start, end, who, headline, language, when, score in rows:
            text, marks = search_pg.unmarked(str(headline))
            if step is not None:
                item = self._step_hit(key, step, shaping, idx)
                found = _hit(key, idx, item, query, language, when, float(score), step)
                hits.append(Hit(**{**found.__dict__, "text": text, "marks": marks}))
                continue
            at, item = self._said(key, idx, query)
            found = _hit(key, at, item, query, language, when, float(score))
            if not found.marks:  # by a stem alone (bridges: bridge): the passage, its marks
                seconds = (_seconds(start), _seconds(end))
                found = Hit(
                    key,
                    idx,
                    *seconds,
                    _label(who),
                    text,
                    marks,
                    language,
                    float(when),
                    float(score),
                    (),
                )
            hits.append(found)
        return hits

    def _places(self, key: str) -> tuple[Place, ...]:
        rows = self._rows(
            "SELECT path, inbox, mtime_ns, updated FROM files WHERE key = ? ORDER BY updated DESC",
            (key,),
        )
        return tuple(
            Place(self._shown(str(path)), str(inbox), int(mtime) / 1e9, float(updated))
            for path, inbox, mtime, updated in rows
        )


_DOC = {"key": "d.key", "language": "d.language", "transcribed": "d.transcribed"}
# SQLite: d (search_docs) for a transcript's entry, t (search_steps) for a step result's
_SQLITE_DOC = {name: f"coalesce(d.{name}, t.{name})" for name in _DOC}


def _filters(filters: Filters, doc: dict[str, str]) -> tuple[str, list[Any]]:
    """SQL (``doc``: the document's key, language, transcribed) and its arguments for the
    filters both backends share."""
    sql, args = "", list[Any]()
    if filters.language:
        names = fulltext.same_language(filters.language)
        sql += f" AND lower({doc['language']}) IN ({', '.join('?' * len(names))})"
        args += names
    on_file, file_args = list[str](), list[Any]()
    if filters.inbox is not None:
        on_file.append("x.inbox = ?")
        file_args.append(filters.inbox)
    for bound, op in ((filters.since, ">="), (filters.until, "<")):
        if bound is None:
            continue
        if filters.transcribed:
            sql += f" AND {doc['transcribed']} {op} ?"
            args.append(bound)
        else:
            on_file.append(f"x.mtime_ns {op} ?")
            file_args.append(int(bound * 1e9))
    if on_file:
        sql += f" AND EXISTS (SELECT 1 FROM files x WHERE x.key = {doc['key']} AND "  # noqa: S608
        sql += " AND ".join(on_file) + ")"
        args += file_args
    return sql, args


def _hit(
    key: str,
    idx: int,
    item: dict[str, Any],
    query: Query,
    language: str | None,
    transcribed: float,
    score: float,
    step: str | None = None,
) -> Hit:
    """A hit in a transcript (``item``: ``_said``'s segments) or, with ``step``, in a
    step's result (``item``: ``_step_hit``'s, naming its sidecar)."""
    text = str(item.get("text") or "")
    return Hit(
        key,
        idx,
        _seconds(item.get("start")),
        _seconds(item.get("end")),
        _label(item.get("speaker")),
        text,
        tuple(terms.marks(text, query)),
        language,
        float(transcribed),
        score,
        (),
        step,
        item.get("sidecar"),
    )


def _with(hit: Hit, places: tuple[Place, ...]) -> Hit:
    return Hit(**{**hit.__dict__, "places": places})


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _label(value: Any) -> str | None:
    return str(value) if value is not None else None
