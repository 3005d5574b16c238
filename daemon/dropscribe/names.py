"""File names that are not UTF-8, where text must be.

Linux names are bytes. A recorder's FAT card, an old zip or a share with the
wrong charset can leave a name such as ``caf\\xe9.wav`` (Latin-1), which Python
holds as a ``str`` with a lone surrogate. The filesystem takes it back as it
was, but UTF-8 text cannot hold it: SQLite, a JSON file, an HTTP header. Each
place that turns a path into text goes through here, and valid names pass
unchanged.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any


def text(name: str | os.PathLike[str]) -> str:
    """A path (or name) as UTF-8-safe text: odd bytes become ``\\xNN`` escapes.

    Used as the ledger's key, so the same name always gives the same text. Only a
    name that already spells such an escape could meet another, in theory.
    """
    value = os.fspath(name)
    try:
        value.encode()
    except UnicodeEncodeError:
        return os.fsencode(value).decode("utf-8", "backslashreplace")
    return value


def untext(text: str) -> str:
    """rows18: the name ``text()`` was made from (``\\xNN`` escapes back to their bytes).
    A valid name that spells such an escape itself reads differently: a caller asking
    whether a file still exists asks for both."""
    if "\\x" not in text:
        return text
    raw = re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m[1], 16)]), text.encode())
    return os.fsdecode(raw)


def cut(name: str, limit: int) -> str:
    """At most ``limit`` bytes of ``name``, never ending inside a UTF-8 character.

    For names built from a recording's name plus more (a number, a suffix), which
    must stay within the 255 bytes a Linux file name may have.
    """
    raw = os.fsencode(name)
    if len(raw) <= limit:
        return name
    raw = raw[:limit]
    try:
        raw.decode()
    except UnicodeDecodeError as exc:  # a character cut in two: drop its first bytes
        if exc.reason == "unexpected end of data":
            raw = raw[: exc.start]
    return os.fsdecode(raw)


def shown(text: str) -> str:
    """Text for a terminal: control and format characters (escape sequences, a bidi
    override that turns ``exe.wav`` around) become visible ``\\xNN`` / ``\\uNNNN``,
    and a byte that is not UTF-8 (a surrogate escape) ``\\xNN`` as ``text()`` writes it."""
    if text.isprintable():
        return text
    return "".join(_shown(ch) for ch in text)


def _shown(ch: str) -> str:
    code = ord(ch)
    if ch.isprintable() or ch == " ":
        return ch
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of one odd byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def readable(name: str) -> str:
    """A name for another program to read (an upload's file name): odd bytes become
    U+FFFD, the extension stays."""
    return os.fsencode(name).decode("utf-8", "replace")


def json_text(data: Any, **options: Any) -> str:
    """JSON that keeps readable names readable, and escapes (``\\udcNN``, which reads
    back to the same path) only when some name is not UTF-8."""
    out = json.dumps(data, ensure_ascii=False, **options)
    try:
        out.encode()
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, **options)
    return out
