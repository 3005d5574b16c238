"""glossary: and glossary_file: find -> replace on every sidecar, through the real dropscribe
process against the fake API; the file read like every file the config names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess, Setup, make_wav, patience
from dropscribe.config.glossaryfile import parsed
from dropscribe.outputs.glossary import applied
from dropscribe.transcript import Transcript
from fakeapi import FakeAPI

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import Upload

FORMATS = ["txt", "srt", "vtt", "json", "verbose_json", "md", "tsv", "lrc"]
WORDS = [("Eefa", 0.0, 0.4), ("Lima", 0.5, 0.9), ("met", 1.0, 1.2), ("eefa.", 1.3, 1.7)]
WORDS += [("EEFA", 2.0, 2.4), ("said", 2.5, 2.8), ("Eefas", 2.9, 3.2), ("name.", 3.3, 3.6)]


def answer(upload: Upload) -> dict[str, Any]:
    """The same misheard names every time, in the text, the segments and the words."""
    del upload
    return {
        "task": "transcribe",
        "language": "english",
        "duration": 4.0,
        "text": "Eefa Lima met eefa. EEFA said Eefas name.",
        "segments": [
            {"id": 0, "seek": 0, "start": 0.0, "end": 1.7, "text": " Eefa Lima met eefa."},
            {"id": 1, "seek": 0, "start": 2.0, "end": 3.6, "text": " EEFA said Eefas name."},
        ],
        "words": [{"word": w, "start": s, "end": e} for w, s, e in WORDS],
    }


@pytest.fixture
def named(setup: Setup) -> Iterator[Setup]:
    with FakeAPI(api_key=API_KEY, answer=answer) as api:
        setup.api = api
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        setup.data["defaults"].update({"formats": FORMATS, "align": False})
        yield setup


def once(setup: Setup) -> tuple[int, DaemonProcess]:
    daemon = DaemonProcess(setup, command="once")
    return daemon.wait(60), daemon


def sidecars(setup: Setup) -> dict[str, str]:
    return {
        p.name: p.read_text()
        for p in setup.inbox.iterdir()
        if p.name.startswith("call.") and not p.name.endswith(".wav")
    }


@pytest.mark.slow
def test_a_changed_glossary_rewrites_every_sidecar_without_sending_again(named: Setup) -> None:
    """Every format (json too) gets the replacements, in each case shape, a two-word key
    spanning two words with their times kept; adding the glossary re-renders the sidecars
    from the stored transcript, sending nothing."""
    make_wav(named.inbox / "call.wav", seconds=4.0)
    code, _ = once(named)
    assert code == 0
    plain = sidecars(named)
    assert all("Eefa" in text or "EEFA" in text for text in plain.values())
    named.data["defaults"].update(
        {"glossary": {"eefa": "Aoife", "Eefa Lima": "Aoife Ní Bhriain"}, "rerun_on_change": False}
    )
    code, daemon = once(named)
    assert code == 0
    assert len(named.api.uploads) == 1  # re-rendered from the ledger, never sent again
    assert daemon.named("transcript.reused")
    glossed = sidecars(named)
    assert set(glossed) == set(plain)
    for name, text in glossed.items():
        assert "Eefa " not in text, name
        assert "eefa." not in text, name
        assert "EEFA " not in text, name
        assert "Eefas" in text, name  # whole words only
    assert glossed["call.txt"].startswith("Aoife Ní Bhriain met Aoife. AOIFE said Eefas name.")
    before = [
        (w["word"], w["start"], w["end"]) for w in json.loads(plain["call.verbose.json"])["words"]
    ]
    after = [
        (w["word"], w["start"], w["end"]) for w in json.loads(glossed["call.verbose.json"])["words"]
    ]
    assert (
        after
        == [
            (
                "Aoife Ní Bhriain",
                before[0][1],
                before[1][2],
            ),  # from the first's start to the second's end
            *[
                (w.replace("eefa", "Aoife").replace("EEFA", "AOIFE"), s, e)
                for w, s, e in before[2:]
            ],
        ]
    )
    assert json.loads(glossed["call.json"])["text"].startswith("Aoife Ní Bhriain met Aoife.")
    code, daemon = once(named)  # the same glossary again: nothing to do
    assert code == 0
    assert not daemon.named("file.done")
    named.data["defaults"]["glossary"] = {"eefa": "Ava"}  # another glossary: again
    code, daemon = once(named)
    assert code == 0
    assert len(named.api.uploads) == 1
    assert sidecars(named)["call.txt"].startswith("Ava Lima met Ava. AVA said Eefas name.")


@pytest.mark.slow
def test_glossary_file_is_read_as_tab_separated_lines(named: Setup) -> None:
    """glossary_file: one entry a line, what to find, a tab and what to write; comments
    and blank lines skipped."""
    terms = named.root / "terms.tsv"
    terms.write_text("# names we keep mishearing\n\neefa\tAoife\nLima\tLeamy\n")
    named.data["defaults"].update({"glossary_file": str(terms), "formats": ["txt"]})
    make_wav(named.inbox / "call.wav", seconds=4.0)
    code, _ = once(named)
    assert code == 0
    assert (named.inbox / "call.txt").read_text().startswith("Aoife Leamy met Aoife. AOIFE said")


def check_config(setup: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        check=False,
        timeout=patience(30),
        env={**os.environ, **setup.env},
    )


@pytest.mark.slow
def test_a_bad_glossary_file_is_told_with_its_file_and_line(setup: Setup) -> None:
    """Each bad line of a glossary file is a config problem naming the file and its line."""
    terms = setup.root / "terms.tsv"
    terms.write_text("eefa\tAoife\nno tab here\neefa\tAva\n\tAva\n")
    setup.data["defaults"]["glossary_file"] = "terms.tsv"
    done = check_config(setup)
    assert done.returncode == 2
    assert f"{terms}:2: expected what to find, one tab, and what to write" in done.stderr
    assert f"{terms}:3: 'eefa' is given again (first on line 1)" in done.stderr
    assert f"{terms}:4: '': what to find is empty" in done.stderr


@pytest.mark.slow
def test_a_glossary_file_that_is_a_fifo_is_refused_not_waited_on(setup: Setup) -> None:
    """A FIFO named as glossary_file is refused at once (like a prompt_file), never read."""
    fifo = setup.root / "terms.tsv"
    os.mkfifo(fifo)
    setup.data["defaults"]["glossary_file"] = str(fifo)
    done = check_config(setup)
    assert done.returncode == 2
    assert "glossary_file: cannot read" in done.stderr


@pytest.mark.slow
def test_glossary_and_glossary_file_together_are_refused(setup: Setup) -> None:
    """One level gives glossary or glossary_file, not both."""
    terms = setup.root / "terms.tsv"
    terms.write_text("eefa\tAoife\n")
    setup.data["defaults"].update({"glossary_file": str(terms), "glossary": {"a": "b"}})
    done = check_config(setup)
    assert done.returncode == 2
    assert "give glossary or glossary_file, not both" in done.stderr


# ------------------------------------------------------------ the pure parts


def test_a_lower_case_key_keeps_the_case_shape_a_capitalised_one_matches_exactly() -> None:
    """eefa matches Eefa, EEFA and eefa in their shapes; Kate matches only Kate."""
    out = applied(
        Transcript("eefa Eefa EEFA Kate kate KATE"), (("eefa", "aoife"), ("Kate", "Cáit"))
    )
    assert out.text == "aoife Aoife AOIFE Cáit kate KATE"


def test_the_longest_key_wins_and_words_given_without_spaces_join() -> None:
    """Of two keys at one place the longer is taken; words without their spaces (OpenAI's)
    are matched across and joined with a space."""
    words = tuple(
        {"word": w, "start": float(n), "end": n + 0.5} for n, w in enumerate(["a", "b", "c"])
    )
    out = applied(Transcript("a b c", words=words), (("a", "x"), ("a b", "y")))  # type: ignore[arg-type]
    assert out.text == "y c"
    assert [(w["word"], w["start"], w["end"]) for w in out.words] == [
        ("y", 0.0, 1.5),
        ("c", 2.0, 2.5),
    ]


def test_parsed_tells_each_bad_line() -> None:
    """A line without one tab, an empty key and a key given twice are each told with the line."""
    entries, errors = parsed("a\tb\nbad\n\tx\nA\tc\n# c\n\t\n")
    assert entries == [("a", "b"), ("A", "c")]
    assert [line for line, _ in errors] == [2, 3]
