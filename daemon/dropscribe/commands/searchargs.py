"""``dropscribe search``'s arguments: its options, and which words are the query's.

A person leaves a word out with ``-word``, and types it where it comes to mind:
``search -c CONFIG bridge -closed``. argparse alone read that as ``-c losed`` (it joins a
short option and its value, so the config named ``losed`` replaced the one given), and
ended the query at its first option (``bridge -n 5 closed`` was an error). So before
argparse sees them, ``arranged`` sorts the words: one that is an option of search stays
one, with its value; every other word (``-word`` too) is the query's, in its order,
after ``--``. An option is written as argparse takes it: ``-n 5``, ``--inbox calls``,
``--inbox=calls``, ``-n=5``, ``-n5`` (digits), a long one shortened to a prefix only it
has (``--lang de``); ``-cWORD`` is the word ``cWORD`` left out, never ``-c WORD``. An
option's value is never a ``-word``: ``-c -closed`` is argparse's error ("expected one
argument"), as before. A word after ``--`` is the query's, whatever it looks like; an
unknown ``--word`` stays argparse's error (a mistyped ``--jsn`` is not a word to leave
out).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

# Every option of ``dropscribe search`` -> whether it takes a value: cli.py's own (-h,
# -c, --state-dir) and those ``add`` gives it. tests/test_leftovers20_search.py checks
# this against the parser: an option missing here would be read as a query word.
OPTIONS = {
    "-h": False,
    "--help": False,
    "-c": True,
    "--config": True,
    "--state-dir": True,
    "-n": True,
    "--json": False,
    "--inbox": True,
    "--since": True,
    "--until": True,
    "--transcribed": False,
    "--speaker": True,
    "--language": True,
}
# What argparse takes as an option's value although it starts with "-": a negative number
# (``-n -5``, which search reads as 1).
NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


def add(cmd: argparse.ArgumentParser) -> None:
    """Search's own arguments (beside cli.py's -c and --state-dir)."""
    cmd.add_argument(
        "query", nargs="+", metavar="QUERY", help='words, "a phrase", -excluded, prefix* (see docs)'
    )
    cmd.add_argument("-n", type=int, default=20, metavar="N", help="at most N results (20)")
    cmd.add_argument("--json", action="store_true", help="as JSON for scripts (see docs)")
    cmd.add_argument("--inbox", metavar="NAME", help="in this inbox only (its name or path)")
    cmd.add_argument("--since", metavar="DATE", help="recorded on or after (2026-12-01)")
    cmd.add_argument("--until", metavar="DATE", help="recorded on or before (2026-12-31)")
    cmd.add_argument(
        "--transcribed", action="store_true", help="--since/--until: when transcribed instead"
    )
    cmd.add_argument("--speaker", metavar="NAME", help="said by a speaker of this name")
    cmd.add_argument("--language", metavar="LANG", help="in transcripts of this language (de)")


def arranged(argv: Sequence[str]) -> list[str]:
    """``argv`` (the words after ``dropscribe``) with a search's query words moved after
    its options and a ``--``; any other command's as it is."""
    if not argv or argv[0] != "search":
        return list(argv)
    options: list[str] = []
    query: list[str] = []
    words = list(argv[1:])
    at = 0
    while at < len(words):
        word, at = words[at], at + 1
        if word == "--":
            query += words[at:]  # the rest is the query's, whatever it looks like
            break
        name = _option(word)
        if name is None:
            query.append(word)
            continue
        options.append(word)
        joined = "=" in word or (not word.startswith("--") and len(word) > 2)  # -n5
        if OPTIONS.get(name) and not joined and at < len(words):
            value = words[at]
            if value == "-" or not value.startswith("-") or NEGATIVE.match(value):
                options.append(value)
                at += 1
            # else a -word (or --) is never an option's value: argparse's error names it
    return ["search", *options, "--", *query]


def _option(word: str) -> str | None:
    """The option of ``OPTIONS`` that ``word`` is (its value maybe joined to it, a long
    one maybe shortened), in argparse's order of looking; None for a query word, and
    ``word`` itself for an unknown or ambiguous ``--word`` (argparse's error)."""
    if not word.startswith("-") or word == "-":
        return None
    head = word.split("=", 1)[0]
    if head in OPTIONS:  # -c, --inbox=calls, -n=5
        return head
    if word.startswith("--"):
        longer = [o for o in OPTIONS if o.startswith("--") and o.startswith(head)]
        if len(longer) == 1:
            return longer[0]  # --lang de, as argparse shortens
        return None if not longer and " " in word else head  # "--a phrase": argparse's too
    if word[:2] == "-n" and word[2:].isdigit():  # -n5
        return "-n"
    return None  # -closed: the word "closed" left out, not -c losed
