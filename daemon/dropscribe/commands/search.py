"""``dropscribe search QUERY``: where in every transcript the ledger keeps a thing was
said, best first: the recording's path now (of the paths the ledger knows for it, one
that is there), the moment (``12:34``), the speaker, and the sentence with the words
marked. It only reads the ledger, as ``status`` does (same permissions; nothing is
served). ``--json`` prints one value, version 1 (new keys may be added; none change
meaning)::

    {"version": 1, "ledger": "where the ledger is", "query": "as given",
     "results": [{"path": str, "exists": bool, "paths": [str], "inbox": str,
                  "start": float | null, "end": float | null, "at": "12:34" | null,
                  "speaker": str | null, "text": str, "marks": [[start, end]],
                  "language": str | null, "transcribed": "ISO 8601 time",
                  "score": float, "transcript": "the job's key",
                  "found_in": "transcript" | "summary" | "translation",
                  "sidecar": str | null}]}

``found_in`` says what matched: the transcript, or a step's result (its summary, or its
translation into ``language``: its cues keep the recording's times); ``sidecar`` is then
the step's sidecar that shows it (``name.summary.md``, ``name.de.txt``).

``marks`` are character offsets into ``text`` (a text longer than 300 characters, such
as an untimed transcript's, is cut around its first mark, "..." where it was cut);
``exists`` is false when no path the ledger knows holds the recording now (``path`` is
then the latest it knew).
Exit codes: 0 something found, 1 nothing, 2 a bad query, config or ledger.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.commands import searchargs
from dropscribe.commands.console import EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.errors import DropscribeError
from dropscribe.ledger import opening, terms
from dropscribe.ledger.search import Filters, Search
from dropscribe.ledger.store import LEDGER_NAME

if TYPE_CHECKING:
    import argparse

    from dropscribe.ledger.search import Hit, Place
    from dropscribe.vocab.config import Config

VERSION = 1
WINDOW = 300  # characters of a text shown around its first mark
NANO_SPAN = 9.2e9  # seconds either side of 1970 that a signed 64-bit count of ns holds
MOST_RESULTS = 1 << 31  # attack14: -n past this overflowed SQLite's integer (a traceback)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """``dropscribe search`` with the parsed ``args`` (cli.py's)."""
    text = " ".join(args.query)
    query = terms.parse(text)
    if problem := _unusable(args.query, query):
        return fail(f"search: {problem}")
    try:
        filters = Filters(
            inbox=_inbox(cfg, args.inbox),
            since=_when(args.since, end=False),
            until=_when(args.until, end=True),
            transcribed=args.transcribed,
            speaker=_named("--speaker", args.speaker),
            language=_named("--language", args.language),
        )
    except ValueError as exc:
        return fail(f"search: {exc}")
    where = cfg.ledger.url if cfg.ledger else str(cfg.state_dir / LEDGER_NAME)
    try:
        ledger = opening.existing(cfg)
        if ledger is None:
            hits: list[Hit] = []
        else:
            try:
                if not isinstance(ledger, Search):
                    return fail(f"cannot search ledger {where}")
                hits = ledger.search(query, filters, min(max(1, args.n), MOST_RESULTS))
            finally:
                ledger.close()
    except (OSError, DropscribeError) as exc:
        return fail(f"cannot read ledger {where}: {exc}")
    found = [_result(hit, filters.inbox) for hit in hits]
    if args.json:
        value = {"version": VERSION, "ledger": where, "query": text, "results": found}
        print(json.dumps(value, indent=2))  # noqa: T201 - escaped by json
    else:
        _show(found, colour=sys.stdout.isatty())
        if not found:
            say(f"nothing found for {text} in {where}")
    return EXIT_OK if found else EXIT_FAILED


def _unusable(words: list[str], query: terms.Query) -> str | None:
    """Why ``query`` (of ``words``) cannot be searched, if it cannot. A word such as
    ``-json`` is the word json left out, as typed (``searchargs``): said, in case the
    option was meant."""
    if not query.terms:  # "-", "---": no letter or digit
        return f"no word to find in {' '.join(words)!r} (a word is letters and digits)"
    if query.empty:
        return "give at least one word to find (not only -excluded ones)"
    for word in words:
        if searchargs.OPTIONS.get(f"-{word}") is not None:
            note = f"{word} leaves the word {word[1:]} out; the option is -{word}"
            say(f"dropscribe: search: {note}", file=sys.stderr)
    return None


def _named(option: str, given: str | None) -> str | None:
    """``given`` when it holds a letter or digit. leftovers20: SQLite's index dropped a
    ``--speaker '!!!'`` it could not make a phrase of (every speaker's results), and an
    empty one was no filter at all; PostgreSQL's found nothing."""
    if given is not None and not terms.WORD.search(given):
        raise ValueError(f"{option} {given!r}: give a name of letters or digits")
    return given


def _inbox(cfg: Config, given: str | None) -> str | None:
    """An inbox's name, from its name or its path."""
    if given is None:
        return None
    for inbox in cfg.inboxes:
        if given == inbox.name:
            return inbox.name
    path = Path(given).expanduser().absolute()
    for inbox in cfg.inboxes:
        if path == inbox.path:
            return inbox.name
    known = ", ".join(i.name for i in cfg.inboxes)
    raise ValueError(f"--inbox {given}: no inbox has that name or path (the inboxes: {known})")


def _when(given: str | None, *, end: bool) -> float | None:
    """``_moment``, held to the years a file's time in nanoseconds can name (1678 to
    2262): past them the ledger's integer overflowed (attack14: a traceback)."""
    moment = _moment(given, end=end)
    return None if moment is None else max(-NANO_SPAN, min(NANO_SPAN, moment))


def _moment(given: str | None, *, end: bool) -> float | None:
    """Epoch seconds of a date (``2026-12-06``: its start, or with ``end`` the next
    day's) or a time (``2026-12-06T14:30``), local unless it names its zone."""
    if given is None:
        return None
    try:
        day = dt.date.fromisoformat(given)
    except ValueError:
        pass
    else:
        try:  # attack14: 9999-12-31's next day overflowed (a traceback)
            start = dt.datetime.combine(day + dt.timedelta(days=int(end)), dt.time())
            return start.astimezone().timestamp()
        except (OverflowError, OSError):
            raise ValueError(f"{given!r} is out of the range of dates this system keeps") from None
    try:
        return dt.datetime.fromisoformat(given).astimezone().timestamp()
    except (OverflowError, OSError):  # attack14
        raise ValueError(f"{given!r} is out of the range of dates this system keeps") from None
    except ValueError:
        raise ValueError(
            f"{given!r} is not a date (2026-12-06) or a time (2026-12-06T14:30)"
        ) from None


def _result(hit: Hit, inbox: str | None) -> dict[str, Any]:
    place, exists = _current(hit.places, inbox)
    text, marks = window(hit.text, hit.marks)
    return {
        "path": place.path if place else None,
        "exists": exists,
        "paths": [p.path for p in hit.places],
        "inbox": place.inbox if place else None,
        "start": hit.start,
        "end": hit.end,
        "at": clock(hit.start) if hit.start is not None else None,
        "speaker": hit.speaker,
        "text": text,
        "marks": [list(m) for m in marks],
        "language": hit.language,
        "transcribed": dt.datetime.fromtimestamp(hit.transcribed, dt.UTC)
        .astimezone()
        .isoformat(timespec="seconds"),
        "score": round(hit.score, 6),
        "transcript": hit.key,
        "found_in": _found_in(hit.step),
        "sidecar": hit.sidecar,
    }


def _found_in(step: str | None) -> str:
    """``transcript``, ``summary`` or ``translation`` (a step named ``translate:de``)."""
    if step is None:
        return "transcript"
    return "translation" if step.startswith("translate") else step


def _current(places: tuple[Place, ...], inbox: str | None) -> tuple[Place | None, bool]:
    """Where the recording is now: the latest path the ledger knows that holds a file
    (in ``inbox`` first, when one is asked for); else the latest it knew."""
    ordered = sorted(places, key=lambda p: inbox is not None and p.inbox != inbox)
    for place in ordered:
        if os.path.lexists(place.path):
            return place, True
    return (ordered[0] if ordered else None), False


def window(
    text: str, marks: tuple[tuple[int, int], ...]
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A long text (an untimed transcript is one) cut to ``WINDOW`` characters around
    its first mark, with "..." where it was cut; the marks moved with it."""
    if len(text) <= WINDOW:
        return text, marks
    first = marks[0][0] if marks else 0
    start = max(0, first - WINDOW // 3)
    start = text.rfind(" ", 0, start) + 1 if start else 0
    end = min(len(text), start + WINDOW)
    if end < len(text) and (space := text.rfind(" ", start, end)) > first:
        end = space
    lead = "..." if start else ""
    shift = len(lead) - start
    moved = tuple((a + shift, b + shift) for a, b in marks if a >= start and b <= end)
    return lead + text[start:end] + ("..." if end < len(text) else ""), moved


def clock(seconds: float) -> str:
    """``12:34`` (minutes and seconds), ``1:02:03`` past an hour."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _show(found: list[dict[str, Any]], *, colour: bool) -> None:
    """One line per result: path, moment, speaker, the sentence with its words marked."""
    for item in found:
        path = names.shown(item["path"] or "?")
        if not item["exists"]:
            path += " (not there now)"
        at = item["at"] or "--:--"
        who = f"{names.shown(item['speaker'])}: " if item["speaker"] else ""
        what = item.get("found_in", "transcript")
        if what != "transcript":  # "summary (x.summary.md)", "translation to de (...)"
            if what == "translation":
                what += f" to {names.shown(item['language'] or '?')}"
            if item.get("sidecar"):
                what += f" ({names.shown(item['sidecar'])})"
            who = f"{what}  {who}"
        line = f"{path}  {at}  {who}{marked(item['text'], item['marks'], colour=colour)}"
        print(line)  # noqa: T201 - every piece escaped above


def marked(text: str, marks: list[list[int]], *, colour: bool) -> str:
    """``text`` (escaped) with the marked words in bold, or in [brackets] off a terminal;
    marks with only spaces between them are one ("northern bridge")."""
    spans: list[list[int]] = []
    for start, end in marks:
        if spans and not text[spans[-1][1] : start].strip():
            spans[-1][1] = end
        else:
            spans.append([start, end])
    opening_, closing = ("\x1b[1m", "\x1b[22m") if colour else ("[", "]")
    out, last = [], 0
    for start, end in spans:
        out += [names.shown(text[last:start]), opening_, names.shown(text[start:end]), closing]
        last = end
    out.append(names.shown(text[last:]))
    return "".join(out)
