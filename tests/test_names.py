"""File names that are not UTF-8, or long, turned into text and shorter names."""

from __future__ import annotations

import json
import os

from dropscribe import names

LATIN1 = os.fsdecode(b"caf\xe9.wav")  # as an old FAT recorder writes it


def test_text_escapes_only_names_that_are_not_utf8():
    """Valid names pass unchanged; a Latin-1 byte becomes a \\xNN escape that SQLite
    and JSON can hold, the same each time."""
    assert names.text("notes/Запись 1.wav") == "notes/Запись 1.wav"
    assert names.text(LATIN1) == "caf\\xe9.wav"
    assert names.text(LATIN1).encode()


def test_json_text_reads_back_the_same_path():
    """JSON of a non-UTF-8 path is valid UTF-8 and loads back to the very same name;
    readable names stay unescaped."""
    out = names.json_text({"source": LATIN1})
    out.encode()
    assert json.loads(out)["source"] == LATIN1
    assert names.json_text({"source": "Запись"}) == '{"source": "Запись"}'


def test_cut_keeps_within_the_limit_without_splitting_a_character():
    """A cut name is at most the limit in bytes and ends on a whole character; bytes
    that were never UTF-8 are kept as they are."""
    for limit in range(1, 12):
        short = names.cut("я" * 10, limit)
        assert len(os.fsencode(short)) <= limit
        assert short == "я" * (limit // 2)
    assert names.cut("abc", 10) == "abc"
    assert os.fsencode(names.cut(LATIN1, 6)) == b"caf\xe9.w"
