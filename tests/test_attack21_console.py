"""attack21: what the daemon logs on a terminal (the console renderer: ``run`` in the
foreground, ``once``) showed a file's name as it is, so a name dropped into a shared
inbox by another user (``ESC ] 0 ; ... BEL`` sets the title; ``ESC [ 2 J`` clears the
screen; OSC 52 writes the clipboard) was carried out by the admin's terminal. Each text
is now shown with its control and format characters as ``\\xNN``/``\\uNNNN``, as status
shows names; JSON lines keep every character, those not printable as ``\\uNNNN``."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
import structlog

from dropscribe.ops import log
from test_progress import _on_a_terminal

HOSTILE = "\x1b]0;owned\x07\x1b[2J\u202ejunk.wav"


@pytest.mark.slow
def test_a_hostile_name_reaches_the_terminal_escaped(setup: Any) -> None:
    """once on a terminal, a file named with a title-setting OSC, a screen clear and a
    bidi override that is no audio: it fails, and its name is shown escaped, none of its
    sequences written as they are."""
    setup.data["log"] = {"format": "console"}
    (setup.inbox / HOSTILE).write_bytes(b"no audio here" * 100)
    code, text = _on_a_terminal(setup, {})
    assert code == 1, text
    assert "\\x1b]0;owned\\x07\\x1b[2J\\u202ejunk.wav" in text, text
    for raw in ("\x1b]0;owned", "\x1b[2J", "\u202e"):
        assert raw not in text, repr(text)


def test_a_json_line_keeps_every_character_and_writes_none_a_terminal_acts_on() -> None:
    """JSON lines (ensure_ascii off): a name with a C1 CSI (U+009B), a bidi override, a
    byte that is not UTF-8 and a character past U+FFFF reads back as it was, and the
    line holds none of the first three as they are."""
    name = "/in/\x9b2J\u202e\udcff\U0001f600.wav"
    stream = io.StringIO()
    log.configure("json", "info", stream=stream)
    try:
        structlog.get_logger("dropscribe").info("file.done", path=name)
    finally:
        log.configure("json", "debug", stream=sys.stderr)
    line = stream.getvalue().strip()
    assert not {"\x9b", "\u202e", "\udcff"} & set(line), repr(line)
    assert json.loads(line)["path"] == name
