"""The config file's YAML: its values, where each key is, and what YAML allows but no
setting can be.

YAML can say more than a config needs, and some of it breaks whatever reads it next:
lists nested thousands deep (PyYAML's composer and pydantic recurse until Python's
stack runs out), aliases of aliases that expand to billions of values, a NUL or a
lone surrogate in a string (no path, header or form field can hold one), binary
data, an integer of 5,000 digits, a date with month 13. Each is found here, before
anything recurses or converts, and reported as a Problem with its file, line and
key; the events are read first (PyYAML's parser is a loop, not a recursion), so the
depth and size are known before the composer runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml

from dropscribe.config.files import HOLDS_NUL
from dropscribe.config.locate import KeyPath, dotted
from dropscribe.errors import ConfigError, Problem

MAX_DEPTH = 32  # the schema's deepest key is six levels down
MAX_VALUES = 100_000  # values in the document, every alias counted as what it stands for
BINARY = "tag:yaml.org,2002:binary"


class Document(NamedTuple):
    raw: Any  # the values, as YAML's safe loader builds them
    lines: dict[KeyPath, int]  # the line of each key path
    problems: list[Problem]  # what is wrong with the values themselves


class _Unreadable(Exception):  # noqa: N818 - internal: a scalar YAML cannot turn into a value
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Loader(yaml.SafeLoader):
    """The safe loader, with a value it cannot build (``int`` of 5,000 digits, a date
    with month 13, ``!!bool x``) reported with its node instead of escaping as a
    ValueError, KeyError or the like."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, ArithmeticError, LookupError, TypeError) as exc:
            raise _Unreadable(node, f"cannot be read as a value: {exc}") from None


def parse(text: str, fname: str) -> Document:
    """The document in ``text``; ConfigError when YAML cannot read it at all."""
    loader = _Loader(text)
    try:
        _measure(yaml.parse(text, Loader=yaml.SafeLoader), fname)
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        problems: list[Problem] = []
        paths: dict[int, KeyPath] = {}
        if node is not None and not _index(node, lines, problems, paths, fname):
            raise ConfigError(problems)
        try:
            raw = loader.construct_document(node) if node is not None else None
        except _Unreadable as exc:
            where = paths.get(id(exc.node), ())
            line = exc.node.start_mark.line + 1
            raise ConfigError(
                [*problems, Problem(fname, line, dotted(where), exc.message)]
            ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(fname, line, "", f"not valid YAML: {detail}")]) from None
    finally:
        loader.dispose()
    return Document(raw, lines, problems)


class _Open:
    """A collection being read: its values so far, how deep it goes, where in it we are."""

    def __init__(self, anchor: str | None, *, mapping: bool) -> None:
        self.anchor = anchor
        self.mapping = mapping
        self.values = 1
        self.depth = 0
        self.key: str | int = "" if mapping else -1
        self.next_is_key = mapping

    def step(self, event: yaml.NodeEvent) -> None:
        """Move on to the node ``event`` starts: the next key's value, or the next item."""
        if not self.mapping:
            assert isinstance(self.key, int)
            self.key += 1
        elif self.next_is_key:
            self.key = str(event.value) if isinstance(event, yaml.ScalarEvent) else "?"
        self.next_is_key = self.mapping and not self.next_is_key


def _measure(events: Any, fname: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or larger than MAX_VALUES (its
    aliases expanded), from its events, before anything recurses into it."""
    open_: list[_Open] = []
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) of its node
    total = 0
    for event in events:
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            continue
        if open_ and isinstance(event, yaml.NodeEvent):
            open_[-1].step(event)
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                _refuse(fname, event, open_, f"nested deeper than {MAX_DEPTH} levels")
            open_.append(_Open(event.anchor, mapping=isinstance(event, yaml.MappingStartEvent)))
            continue
        values, depth = _size(event, open_, anchored)
        total += values
        if open_:
            open_[-1].values += values
            open_[-1].depth = max(open_[-1].depth, depth)
        if len(open_) + depth > MAX_DEPTH:
            _refuse(fname, event, open_, f"nested deeper than {MAX_DEPTH} levels")
        if total > MAX_VALUES:
            message = f"holds more than {MAX_VALUES:,} values (aliases counted whole)"
            _refuse(fname, event, open_, message)


def _size(
    event: yaml.Event, open_: list[_Open], anchored: dict[str, tuple[int, int]]
) -> tuple[int, int]:
    """The values and depth of the node that ``event`` ends (a scalar, an alias, or the
    collection it closes); an anchored one is noted for its aliases."""
    if isinstance(event, yaml.AliasEvent):
        return anchored.get(str(event.anchor), (1, 0))
    anchor = event.anchor if isinstance(event, yaml.NodeEvent) else None
    values, depth = 1, 0
    if isinstance(event, yaml.CollectionEndEvent):
        done = open_.pop()
        values, depth, anchor = done.values, done.depth + 1, done.anchor
    if anchor is not None:
        anchored[anchor] = (values, depth)
    return values, depth


def _refuse(fname: str, event: yaml.Event, within: list[_Open], message: str) -> None:
    where = tuple(level.key for level in within)
    line = event.start_mark.line + 1 if event.start_mark is not None else None
    raise ConfigError([Problem(fname, line, dotted(where), message)])


def _index(
    root: yaml.Node,
    lines: dict[KeyPath, int],
    problems: list[Problem],
    paths: dict[int, KeyPath],
    fname: str,
) -> bool:
    """Note the line of every key path (a key's own line), a repeated key, and each
    string no setting can hold; a loop, not a recursion. False when a value holds
    itself (``a: &a [*a]``): nothing can read it."""
    todo: list[tuple[yaml.Node, KeyPath, int | None, tuple[int, ...]]] = [(root, (), None, ())]
    while todo:
        node, path, key_line, above = todo.pop()
        lines[path] = key_line or node.start_mark.line + 1
        paths.setdefault(id(node), path)
        if id(node) in above:
            message = "holds itself (an alias inside its own anchor)"
            problems.append(Problem(fname, lines[path], dotted(path), message))
            return False
        above = (*above, id(node))
        if isinstance(node, yaml.ScalarNode):
            if why := _unusable(node):
                problems.append(Problem(fname, node.start_mark.line + 1, dotted(path), why))
        elif isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in seen:
                    message = "duplicate key (YAML would silently keep the last one)"
                    problems.append(Problem(fname, line, dotted((*path, key)), message))
                elif why := _unusable(key_node):
                    problems.append(Problem(fname, line, dotted(path), f"a key {why}"))
                seen.add(key)
                if not isinstance(key_node, yaml.ScalarNode):  # a list as a key may hold itself
                    todo.append((key_node, (*path, key), line, above))
                todo.append((value_node, (*path, key), line, above))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(
                (item, (*path, index), None, above) for index, item in enumerate(node.value)
            )
    return True


def _unusable(node: yaml.ScalarNode) -> str | None:
    """Why a scalar cannot be any setting's value, if it cannot."""
    if node.tag == BINARY:
        return "is binary data (!!binary), which no setting takes"
    text = str(node.value)
    if "\0" in text:
        return HOLDS_NUL
    try:
        text.encode()
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\ud800-\\udfff), which is not text"
    return None
