"""What a person types after ``dropscribe search``, read once into terms, and written out
for each backend without ever passing their text through as syntax.

The syntax: ``word`` (every word must be there), ``"a phrase"`` (these words in this
order), ``-word`` or ``-"a phrase"`` (not there; U+2212 and the en and em dashes are a
minus too), ``prefix*`` (a word that starts so).
Anything else is a separator: quotes left open close at the end, parentheses, colons,
``NEAR``, ``AND``/``OR``/``NOT`` are words like any other. A term keeps only the runs of
letters and digits in it (what both backends' tokenizers make of it), so what reaches
SQLite's MATCH is quoted strings of letters and digits, and PostgreSQL's to_tsquery
quoted lexemes of the same: no operator of either can come from the query.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

WORD = re.compile(r"[^\W_]+")  # letters and digits: a token for FTS5's unicode61 and for us
# A piece of the query: an optional minus, then a quoted phrase (closed or not) or a bare run.
# leftovers20: the minus as typed or pasted too: U+2212, and the en and em dashes a phone or
# an editor makes of "-" and "--" (en dash + "closed" was the word closed wanted).
PIECE = re.compile(r'([-\u2212\u2013\u2014]?)(?:"([^"]*)"?|([^\s"]+))')
MOST_TERMS = 32  # more is not a search, and each costs the backend a lookup


@dataclass(frozen=True)
class Term:
    """Words that must follow each other (one word: a word); ``prefix``: the last one
    may go on; ``excluded``: the segment must not hold it."""

    words: tuple[str, ...]
    prefix: bool = False
    excluded: bool = False


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...]

    @property
    def wanted(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.excluded)

    @property
    def empty(self) -> bool:
        """Nothing to look for: no word that is not excluded."""
        return not self.wanted


def parse(text: str) -> Query:
    """``text`` as terms (see the module's docstring); never raises."""
    terms: list[Term] = []
    for match in PIECE.finditer(text):
        minus, quoted, bare = match.groups()
        raw = quoted if quoted is not None else bare
        # folded, then cut again: what folding makes of a letter is letters and digits too
        words = tuple(t for w in WORD.findall(raw) for t in WORD.findall(folded(w)))
        if not words:
            continue
        # "don't", "e-mail": the words in order, as the tokenizers split them
        prefix = bare is not None and bare.endswith("*") and WORD.match(bare[-2:-1] or "_")
        terms.append(Term(words, prefix=bool(prefix), excluded=bool(minus)))
        if len(terms) == MOST_TERMS:
            break
    return Query(tuple(dict.fromkeys(terms)))


def folded(word: str) -> str:
    """A word as FTS5's ``unicode61 remove_diacritics 2`` compares it: case folded,
    accents gone."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# ---------------------------------------------------------------- SQLite FTS5


def fts5(query: Query, column: str = "text") -> str:
    """The MATCH expression: every wanted term in ``column``, none of the excluded."""
    wanted = " AND ".join(_fts5_term(t) for t in query.wanted)
    text = f"({wanted})"
    for term in query.terms:
        if term.excluded:
            text += f" NOT {_fts5_term(term)}"
    return f"{column} : ({text})"


def fts5_phrase(words: str, column: str) -> str:
    """``words`` as one phrase in ``column`` (a speaker's name), or "" when it has none."""
    found = [folded(w) for w in WORD.findall(words)]
    return f'{column} : "{" ".join(found)}"' if found else ""


def _fts5_term(term: Term) -> str:
    # letters and digits only: nothing to escape inside the quotes
    return f'"{" ".join(term.words)}"' + ("*" if term.prefix else "")


# ---------------------------------------------------------------- PostgreSQL


def tsquery(query: Query) -> str:
    """The text for ``to_tsquery(config, ...)``: quoted lexemes, which the config's
    dictionaries then stem (or drop, for its stop words)."""
    parts = [_ts_term(t) for t in query.wanted]
    parts += [f"!({_ts_term(t)})" for t in query.terms if t.excluded]
    return " & ".join(parts)


def _ts_term(term: Term) -> str:
    lexemes = [f"'{w}'" for w in term.words]
    if term.prefix:
        lexemes[-1] += ":*"
    return "(" + " <-> ".join(lexemes) + ")"


# ---------------------------------------------------------------- marking


def marks(text: str, query: Query) -> list[tuple[int, int]]:
    """Where in ``text`` the wanted terms' words are (start, end), in order: each word
    equal to one of them once folded (or starting with it, for a prefix)."""
    exact: set[str] = set()
    starts: set[str] = set()
    for term in query.wanted:
        exact.update(term.words[:-1] if term.prefix else term.words)
        if term.prefix:
            starts.add(term.words[-1])
    found = []
    for match in WORD.finditer(text):
        word = folded(match.group())
        if word in exact or any(word.startswith(s) for s in starts):
            found.append(match.span())
    return found


def span(texts: list[str], query: Query) -> tuple[int, int]:
    """The consecutive ``texts`` (a passage's segments, and maybe some after it) that end
    earliest and hold every wanted term, a phrase's words in order (across a segment's
    end too), the fewest of them: (first, last); (0, 0) when no term is there."""
    said = [
        (token, n)
        for n, text in enumerate(texts)
        for match in WORD.finditer(text)
        for token in WORD.findall(folded(match.group()))
    ]
    found: list[list[tuple[int, int]]] = []  # each wanted term: the segments of each place
    for term in query.wanted:
        places = []
        for at in range(len(said) - len(term.words) + 1):
            got = [said[at + i][0] for i in range(len(term.words))]
            if got[:-1] == list(term.words[:-1]) and (
                got[-1].startswith(term.words[-1]) if term.prefix else got[-1] == term.words[-1]
            ):
                places.append((said[at][1], said[at + len(term.words) - 1][1]))
        found.append(places)
    for last in range(len(texts)):
        for first in range(last, -1, -1):
            if all(any(first <= a and b <= last for a, b in places) for places in found):
                return first, last
    return 0, 0
