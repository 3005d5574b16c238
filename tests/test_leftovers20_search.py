"""leftovers20: ``dropscribe search -c CONFIG bridge -closed`` as a person types it. argparse
read ``-closed`` as ``-c losed`` (the config named ``losed``) and ended the query at its
first option; now a ``-word`` that is no option of search is a word left out, wherever
it stands, and the options keep working around the query. Through the real command,
on a real SQLite ledger that holds two transcripts."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from dropscribe.commands import cli, searchargs
from dropscribe.ledger.store import SqliteLedger
from dropscribe.vocab.states import JobKey
from test_search35_migrate import config

if TYPE_CHECKING:
    from pathlib import Path

SAID = {
    "a.wav": "the northern bridge is closed until friday",
    "b.wav": "the southern bridge is open again",
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config whose SQLite ledger holds SAID's two transcripts, one segment each."""
    root = tmp_path / "site"
    root.mkdir()
    path = config(root, "")
    ledger = SqliteLedger(root / "state" / "ledger.sqlite3")
    try:
        for n, (name, text) in enumerate(SAID.items()):
            recording = root / "calls" / name
            recording.write_bytes(b"RIFF")
            key = JobKey(str(n) * 64, "s" * 16)
            segment = {"id": 0, "start": 61.0, "end": 64.0, "text": text}
            result = {"text": text, "language": "en", "duration": 70.0, "segments": [segment]}
            ledger.begin(recording, "calls", (n, 10**18, 0), key, {})
            ledger.finish(recording, (key, result, None), [])
            ledger.file_done(recording, ["txt"], [])
    finally:
        ledger.close()
    return path


def _search(path: Path, *words: str) -> subprocess.CompletedProcess[str]:
    """The real ``dropscribe search`` with ``words`` after ``search`` (no -c of its own)."""
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "search", *words],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=path.parent,
    )


def _found(done: subprocess.CompletedProcess[str]) -> tuple[str, list[str]]:
    """--json's query as it was read, and the names of the recordings found."""
    assert done.returncode in {0, 1}, done.stderr
    value: dict[str, Any] = json.loads(done.stdout)
    return value["query"], [r["path"].rsplit("/", 1)[-1] for r in value["results"]]


def test_a_dash_word_after_a_word_is_left_out_not_read_as_c(site: Path) -> None:
    """``-c CONFIG bridge -closed``: the config given is read, and a.wav (where the bridge
    is closed) left out; argparse read -closed as -c losed (cannot read config losed)."""
    done = _search(site, "-c", str(site), "bridge", "-closed", "--json")
    assert _found(done) == ("bridge -closed", ["b.wav"])


def test_a_dash_word_first_or_before_c_is_left_out_too(site: Path) -> None:
    """``-closed bridge -c CONFIG`` and ``-opened -closed bridge``: each -word before the
    query's first word is one left out too, and -c after the query still the config."""
    done = _search(site, "-closed", "bridge", "-c", str(site), "--json")
    assert _found(done) == ("-closed bridge", ["b.wav"])
    done = _search(site, "-c", str(site), "--json", "-open", "-closed", "bridge")
    assert _found(done) == ("-open -closed bridge", [])


def test_options_among_the_query_words_keep_working(site: Path) -> None:
    """``bridge -n 1 the -closed``, ``bridge -n1 closed -c C --inbox=calls --lang en``:
    every option is read (-n 1 and -n1, an inbox joined with =, a shortened --language),
    and the words around them are one query in their order (argparse stopped the query
    at -n: "unrecognized arguments: the")."""
    done = _search(site, "-c", str(site), "bridge", "-n", "1", "the", "-closed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{site.parent}/calls/b.wav  1:01  [the] southern [bridge] is open again"
    ]
    done = _search(
        site, "bridge", "-n1", "closed", "-c", str(site), "--inbox=calls", "--lang", "en", "--json"
    )
    assert _found(done) == ("bridge closed", ["a.wav"])


def test_c_never_takes_a_dash_word_for_its_config(site: Path) -> None:
    """``-c -closed bridge`` and ``bridge -c`` are argparse's error naming -c (exit 2),
    and ``-cCONFIG`` is not a config: search asks for -c; nothing is searched."""
    for words in (["-c", "-closed", "bridge"], ["bridge", "-c"], ["-c", "--", "bridge"]):
        done = _search(site, *words)
        assert done.returncode == 2, words
        assert "argument -c/--config: expected one argument" in done.stderr, words
    done = _search(site, f"-c{site}", "bridge")
    assert done.returncode == 2
    assert "the following arguments are required: -c/--config" in done.stderr


def test_hostile_queries_are_clear_errors_or_results(site: Path) -> None:
    """Only dashes, ``--`` alone, ``-`` alone, a mistyped option and 10,000 words: each
    an error saying what is missing (exit 2) or a search (exit 0 or 1), no traceback."""
    c = ["-c", str(site)]
    cases = {
        ("--",): "the following arguments are required: QUERY",
        ("---",): "the following arguments are required: QUERY",
        ("--", "-"): "no word to find in '-'",
        ("--", "--", "---"): "no word to find in '-- ---'",
        ("-", "-closed"): "give at least one word to find (not only -excluded ones)",
        ("bridge", "--jsn"): "unrecognized arguments: --jsn",
        ("bridge", "-n", "many"): "argument -n: invalid int value: 'many'",
    }
    for words, said in cases.items():
        done = _search(site, *c, *words)
        assert (done.returncode, said in done.stderr) == (2, True), (words, done.stderr)
        assert "Traceback" not in done.stderr
    many = [f"-w{n}" if n % 2 else f"w{n}" for n in range(10_000)]
    done = _search(site, *c, "bridge", *many, "--json")
    assert _found(done) == (" ".join(["bridge", *many]), [])
    done = _search(site, *c, "--json", "--", "bridge", "-n", "1")
    assert _found(done) == ("bridge -n 1", [])  # after --, -n is a word left out


def test_a_long_option_written_with_one_dash_is_pointed_out(site: Path) -> None:
    """``bridge -json`` leaves the word "json" out, as asked, and says on stderr that the
    option is --json; the results are the text lines."""
    done = _search(site, "-c", str(site), "bridge", "-json")
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 2
    assert "-json leaves the word json out; the option is --json" in done.stderr


def test_every_option_of_search_is_known_to_the_arranging() -> None:
    """searchargs.OPTIONS is the search parser's options, each with whether it takes a
    value: one missing would be read as a query word."""
    parser = cli._parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    search = sub.choices["search"]
    found = {
        name: action.nargs != 0 for action in search._actions for name in action.option_strings
    }
    assert found == searchargs.OPTIONS


def test_other_commands_words_are_left_as_they_are() -> None:
    """Only search's words are arranged: retry's, explain's go to argparse untouched."""
    words = ["retry", "-c", "x.yaml", "-closed"]
    assert searchargs.arranged(words) == words
    assert searchargs.arranged([]) == []


def test_a_speaker_or_language_of_no_word_is_refused(site: Path) -> None:
    """``--speaker '!!!'`` or ``--speaker ''`` (and the same of --language) exit 2 naming
    the option; SQLite dropped such a filter and found every speaker's passages."""
    for option in ("--speaker", "--language"):
        for given in ("!!!", ""):
            done = _search(site, "-c", str(site), option, given, "bridge")
            assert done.returncode == 2, (option, given, done.stdout)
            assert f"{option} {given!r}: give a name of letters or digits" in done.stderr


def test_a_pasted_minus_or_dash_leaves_the_word_out(site: Path) -> None:
    """``bridge -closed`` with an en dash, an em dash or U+2212 for the minus (as a phone
    or an editor makes them of - and --) leaves the word out as -closed does; they asked
    for it (a.wav found, the opposite)."""
    for minus in ("\u2013", "\u2014", "\u2212"):
        done = _search(site, "-c", str(site), "bridge", f"{minus}closed", "--json")
        assert _found(done) == (f"bridge {minus}closed", ["b.wav"]), minus
