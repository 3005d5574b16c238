"""``dropscribe search`` as a person types it: a query or a filter it cannot use is a clear
error (exit 2), an empty ledger finds nothing (exit 1), and the terminal's lines mark the
words found, in bold on a terminal and in [brackets] off one."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import TYPE_CHECKING

from dropscribe.commands import search

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def _config(tmp_path: Path) -> Path:
    inbox = tmp_path / "calls"
    inbox.mkdir()
    path = tmp_path / "dropscribe.json"
    path.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "endpoints": {"api": {"base_url": "http://127.0.0.1:9/v1"}},
                "defaults": {"endpoint": "api", "model": "whisper-1"},
                "inboxes": [{"path": str(inbox), "name": "calls"}],
            }
        )
    )
    return path


def _search(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "search", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_query_of_only_excluded_words_is_refused(tmp_path: Path) -> None:
    """A query with nothing to find (only -excluded words) exits 2 and says what to give."""
    done = _search(_config(tmp_path), "--", "-bridge")
    assert done.returncode == 2
    assert "give at least one word to find" in done.stderr


def test_a_date_or_inbox_it_cannot_use_names_what_it_takes(tmp_path: Path) -> None:
    """--since with no date and --inbox naming no inbox exit 2, each naming what it takes."""
    config = _config(tmp_path)
    late = _search(config, "bridge", "--since", "last tuesday")
    assert late.returncode == 2
    assert "is not a date (2026-12-06) or a time (2026-12-06T14:30)" in late.stderr
    where = _search(config, "bridge", "--inbox", "meetings")
    assert where.returncode == 2
    assert "--inbox meetings: no inbox has that name or path (the inboxes: calls)" in where.stderr


def test_a_ledger_not_made_yet_finds_nothing(tmp_path: Path) -> None:
    """Before the daemon has run, search exits 1 and says where it looked."""
    config = _config(tmp_path)
    done = _search(config, "bridge", "--inbox", str(tmp_path / "calls"), "--until", "2026-12-06")
    assert done.returncode == 1
    assert done.stdout.startswith("nothing found for bridge in ")


def test_words_are_marked_in_brackets_off_a_terminal_and_in_bold_on_one() -> None:
    """Marks side by side are one ("northern bridge"); off a terminal they are [brackets],
    on one bold on and off; a name's odd characters are escaped, never sent raw."""
    text = "The northern bridge is closed\x1b[31m"
    marks = [[4, 12], [13, 19]]
    plain = search.marked(text, marks, colour=False)
    assert plain.startswith("The [northern bridge] is closed")
    assert "\x1b[31m" not in plain
    assert search.marked(text, marks, colour=True).startswith(
        "The \x1b[1mnorthern bridge\x1b[22m is closed"
    )


def test_a_long_untimed_text_is_cut_around_its_first_mark() -> None:
    """A long text is cut to its window around the first mark, '...' where it was cut,
    and the marks move with it to the same words."""
    words = [f"w{n}" for n in range(400)]
    text = " ".join(words)
    at = text.index("w300")
    cut, marks = search.window(text, ((at, at + 4),))
    assert cut.startswith("...")
    assert cut.endswith("...")
    assert len(cut) <= search.WINDOW + 6
    ((start, end),) = marks
    assert cut[start:end] == "w300"


def test_the_moment_and_the_days_a_person_types() -> None:
    """Moments read 12:34, or 1:02:03 past an hour; --until a date means to the end of it."""
    assert search.clock(754.9) == "12:34"
    assert search.clock(3723) == "1:02:03"
    start = search._when("2026-12-06", end=False)
    end = search._when("2026-12-06", end=True)
    assert start is not None
    assert end is not None
    assert dt.timedelta(seconds=end - start) in {dt.timedelta(hours=h) for h in (23, 24, 25)}


def test_a_result_line_names_the_place_the_moment_and_the_speaker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each terminal line: the recording (or that it is not there now), the moment (--:--
    for an untimed one), the speaker, the sentence with its words marked."""
    found = [
        {
            "path": "/srv/a.wav",
            "exists": True,
            "at": "12:34",
            "speaker": "Ana",
            "text": "The northern bridge",
            "marks": [[4, 12], [13, 19]],
        },
        {
            "path": "/srv/b.wav",
            "exists": False,
            "at": None,
            "speaker": None,
            "text": "a bridge",
            "marks": [[2, 8]],
        },
    ]
    search._show(found, colour=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "/srv/a.wav  12:34  Ana: The [northern bridge]",
        "/srv/b.wav (not there now)  --:--  a [bridge]",
    ]
