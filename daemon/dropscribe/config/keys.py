"""A mapping key that YAML does not read as text, said as the person wrote it.

Every key of a config is a name (a setting, an endpoint, a model, a word of the
glossary), but YAML reads ``1:``, ``2024-01-01:``, ``yes:``, ``null:``, ``3.5:``,
``[a, b]:`` as a number, a date, a boolean, nothing, a list. Left to pydantic, such
a key is told at its mapping's line as Python prints it (``datetime.date(2024, 1,
1)``), and a list as a key cannot even be built (it is unhashable). ``document.py``
finds these keys on the nodes, before any value is built, and tells each with its
own line and its text from the file (``2024-01-01``); this module says which keys
these are and how to show them.
"""

from __future__ import annotations

import json

import yaml

YAML = "tag:yaml.org,2002:"
# A key YAML builds as text: plain text, the merge key (<<) and the value key (=),
# which the safe loader turns into text or a merge.
TEXT = {f"{YAML}str", f"{YAML}merge", f"{YAML}value"}
WHAT = {
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
    "null": "null (no value)",
    "timestamp": "a date",
    "binary": "binary data",
    "seq": "a list",
    "map": "a mapping",
    "set": "a set",
    "omap": "a list of pairs",
    "pairs": "a list of pairs",
}
LONGEST = 60  # characters of a key's text shown in a problem


def is_text(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag in TEXT


def written(node: yaml.Node, text: str, alias: str | None = None) -> str:
    """The key as the file spells it (``*name`` for an alias), on one line: its line
    breaks and runs of spaces as one space, cut after LONGEST characters."""
    if alias is not None:
        return f"*{alias}"
    start, end = node.start_mark.index, node.end_mark.index
    spelled = " ".join(text[start:end].split()) if 0 <= start < end <= len(text) else ""
    spelled = spelled or '""'  # an empty key (``? `` alone, or ``: x``)
    return spelled if len(spelled) <= LONGEST else spelled[: LONGEST - 1] + "…"


def shown(tag: str) -> str:
    """A tag as a person writes it: ``!!int`` for YAML's own."""
    return "!!" + tag.removeprefix(YAML) if tag.startswith(YAML) else tag


def foreign(tag: str) -> str:
    """What to say of a value tagged ``tag`` that the safe loader cannot build."""
    return (
        f"has the tag {shown(tag)}, which no setting takes: a config holds plain values"
        " (text, numbers, true or false, lists, mappings)"
    )


def not_text(node: yaml.Node) -> str:
    """What is wrong with ``node`` as a key, and what to do about it."""
    tag = str(node.tag)
    what = WHAT.get(tag.removeprefix(YAML)) if tag.startswith(YAML) else None
    what = what or f"a value tagged {shown(tag)}"
    message = f"a key must be text, and YAML reads this one as {what}"
    if isinstance(node, yaml.ScalarNode):
        quoted = json.dumps(str(node.value), ensure_ascii=False)
        message += f": put it in quotes ({quoted}: ...) if it is meant as a name"
    return message
