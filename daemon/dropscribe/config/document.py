"""The config file's YAML: its values, where each key is, and what YAML allows but no
setting can be.

YAML can say more than a config needs, and some of it breaks whatever reads it next:
lists nested thousands deep (PyYAML's composer and pydantic recurse until Python's
stack runs out), aliases of aliases that expand to billions of values, a NUL or a
lone surrogate in a string (no path, header or form field can hold one), binary
data, an integer of 5,000 digits, a date with month 13, a number of 1,000 characters
(attack19: ``0x`` and 5,000 hex digits built an integer no error message could print,
and YAML 1.1's base 60, ``1:1:1:...``, costs time in the square of its length: 55 s of
CPU for a 1 MB config). Each is found here, before
anything recurses or converts, and reported as a Problem with its file, line and
key; the events are read first (PyYAML's parser is a loop, not a recursion), so the
depth and size are known before the composer runs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import yaml

from dropscribe.config import keys
from dropscribe.config.files import HOLDS_NUL
from dropscribe.config.locate import KeyPath, dotted
from dropscribe.errors import ConfigError, Problem

MAX_DEPTH = 32  # the schema's deepest key is six levels down
MAX_VALUES = 100_000  # values in the document, every alias counted as what it stands for
BINARY = "tag:yaml.org,2002:binary"
NUMBERS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
LONGEST_NUMBER = 100  # characters: no setting's number is written in more


class Document(NamedTuple):
    raw: Any  # the values, as YAML's safe loader builds them
    lines: dict[KeyPath, int]  # the line of each key path
    problems: list[Problem]  # what is wrong with the values themselves


class _Unreadable(Exception):  # noqa: N818 - internal: a scalar YAML cannot turn into a value
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


Where = tuple[int, int, str]  # a collection's id, a position in it, "key" | "value" | "item"


class _Loader(yaml.SafeLoader):
    """The safe loader, with a value it cannot build (``int`` of 5,000 digits, a date
    with month 13, ``!!bool x``) reported with its node instead of escaping as a
    ValueError, KeyError or the like, and the place of each alias kept (its node is
    the anchor's, with the anchor's line)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases: dict[Where, tuple[int, str]] = {}  # -> the alias's line, its name

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if isinstance(parent, yaml.CollectionNode) and self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            role = "key" if index is None else "value"
            role = "item" if isinstance(parent, yaml.SequenceNode) else role
            where = (id(parent), len(parent.value), role)
            self.aliases[where] = (event.start_mark.line + 1, str(event.anchor))
        return super().compose_node(parent, index)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, ArithmeticError, LookupError, TypeError) as exc:
            raise _Unreadable(node, f"cannot be read as a value: {exc}") from None

    def builds(self, tag: str) -> bool:
        """Whether the safe loader can build a node tagged ``tag`` (never Python's)."""
        return tag in self.yaml_constructors or any(
            tag.startswith(prefix) for prefix in self.yaml_multi_constructors if prefix
        )


def parse(text: str, fname: str) -> Document:
    """The document in ``text``; ConfigError when YAML cannot read it at all."""
    loader: _Loader | None = None
    try:
        _measure(yaml.parse(text, Loader=yaml.SafeLoader), fname)
        loader = _Loader(text)
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        problems: list[Problem] = []
        paths: dict[int, KeyPath] = {}
        seen = _Seen(loader, text, fname, problems)
        if node is not None and not _index(node, seen, lines, paths):
            raise ConfigError(_ordered(problems))
        try:
            raw = loader.construct_document(node) if node is not None else None
        except _Unreadable as exc:
            where = paths.get(id(exc.node), ())
            line = exc.node.start_mark.line + 1
            problems.append(Problem(fname, line, dotted(where), exc.message))
            raise ConfigError(_ordered(problems)) from None
    except yaml.reader.ReaderError as exc:  # a character YAML refuses anywhere (a NUL)
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.character, int) else None
        raise ConfigError([Problem(fname, line, "", _unprintable(exc.character))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        detail = getattr(exc, "problem", None) or str(exc)
        context, at = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and at and not context.startswith("while"):  # "but found another document"
            detail = f"{context} on line {at.line + 1}, {detail}"
        raise ConfigError([Problem(fname, line, "", f"not valid YAML: {detail}")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Document(raw, lines, _ordered(problems))


def _ordered(problems: list[Problem]) -> list[Problem]:
    """In the file's order, as a person reads it."""
    return sorted(problems, key=lambda p: p.line or 0)


def _unprintable(character: int | bytes) -> str:
    code = character if isinstance(character, int) else ord(character)
    what = "a NUL character (\\0)" if code == 0 else f"the character U+{code:04X}"
    return (
        f"not valid YAML: holds {what}, which a YAML file cannot hold (not even in"
        " quotes): remove it, or write it as an escape in double quotes"
    )


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


class _Seen:
    """What ``_index`` reads the nodes with, what it has seen, and where it tells what
    it finds: once, where the file writes it (a node an alias repeats is read again,
    for its lines, but not told again)."""

    def __init__(self, loader: _Loader, text: str, fname: str, problems: list[Problem]) -> None:
        self.loader, self.text, self.fname, self.problems = loader, text, fname, problems
        self.read: set[int] = set()  # the nodes read once already
        self.quiet = False  # the node being read was read before
        self.kept: list[tuple[yaml.MappingNode, list[tuple[yaml.Node, yaml.Node]]]] = []

    def tell(self, line: int, path: KeyPath, message: str) -> None:
        if not self.quiet:
            self.problems.append(Problem(self.fname, line, dotted(path), message))


def _index(
    root: yaml.Node, seen: _Seen, lines: dict[KeyPath, int], paths: dict[int, KeyPath]
) -> bool:
    """Note the line of every key path (a key's own line), and tell each key that is
    not text (taken out of its mapping: nothing is built of it), a repeated key, a
    tag no setting takes, each string no setting can hold; in the file's order (an
    anchor before its aliases), a loop, not a recursion. False when nothing can be
    built: a tag of Python's, a value that holds itself (``a: &a [*a]``)."""
    todo: list[tuple[yaml.Node, KeyPath, int | None, tuple[int, ...]]] = [(root, (), None, ())]
    buildable = True
    while todo:
        node, path, key_line, above = todo.pop()
        lines[path] = line = key_line or node.start_mark.line + 1
        paths.setdefault(id(node), path)
        if id(node) in above:
            seen.quiet = False
            seen.tell(line, path, "holds itself (an alias inside its own anchor)")
            return False
        above = (*above, id(node))
        seen.quiet = id(node) in seen.read
        seen.read.add(id(node))
        inside: list[tuple[yaml.Node, KeyPath, int | None, tuple[int, ...]]] = []
        if not seen.loader.builds(str(node.tag)):
            seen.tell(line, path, keys.foreign(str(node.tag)))
            buildable = False
        elif isinstance(node, yaml.ScalarNode):
            if not seen.quiet and (why := _unusable(node)):  # once: a long one, aliased
                seen.tell(node.start_mark.line + 1, path, why)
            if node.tag in NUMBERS and len(node.value) > LONGEST_NUMBER:
                node.tag = f"{keys.YAML}str"  # told: built as the text it is, not a number
        elif isinstance(node, yaml.MappingNode):
            for key, key_line, value in _keys(node, path, seen):
                inside.append((value, (*path, key), key_line, above))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                alias = seen.loader.aliases.get((id(node), index, "item"))
                inside.append((item, (*path, index), alias and alias[0], above))
        todo.extend(reversed(inside))  # popped in the file's order
    for mapping, kept in seen.kept:
        mapping.value = kept
    return buildable


def _keys(node: yaml.MappingNode, path: KeyPath, seen: _Seen) -> list[tuple[str, int, yaml.Node]]:
    """The text keys of ``node`` with their lines and values; each key that is not
    text (or holds what no text can) told, and left out of ``node`` once ``_index``
    is done; each repeated one told."""
    kept: list[tuple[yaml.Node, yaml.Node]] = []
    out: list[tuple[str, int, yaml.Node]] = []
    first: dict[str, int] = {}
    for index, (key_node, value_node) in enumerate(node.value):
        alias = seen.loader.aliases.get((id(node), index, "key"))
        line = alias[0] if alias else key_node.start_mark.line + 1
        if not keys.is_text(key_node):
            spelled = keys.written(key_node, seen.text, alias and alias[1])
            seen.tell(line, (*path, spelled), keys.not_text(key_node))
            continue
        if why := _unusable(key_node):
            seen.tell(line, path, f"a key {why}")
            continue
        kept.append((key_node, value_node))
        key = str(key_node.value)
        if key in first:
            message = (
                f"duplicate key: also on line {first[key]}, and YAML would silently keep"
                " only the last one"
            )
            seen.tell(line, (*path, key), message)
        first.setdefault(key, line)
        out.append((key, line, value_node))
    if not seen.quiet:
        seen.kept.append((node, kept))
    return out


def _unusable(node: yaml.ScalarNode) -> str | None:
    """Why a scalar cannot be any setting's value, if it cannot."""
    if node.tag == BINARY:
        return "is binary data (!!binary), which no setting takes"
    text = str(node.value)
    if node.tag in NUMBERS and len(text) > LONGEST_NUMBER:
        return (
            f"is a number {len(text):,} characters long, and no setting takes one written"
            f" in more than {LONGEST_NUMBER}"
        )
    if "\0" in text:
        return HOLDS_NUL
    try:
        text.encode()
    except UnicodeEncodeError:
        return "holds a lone surrogate (\\ud800-\\udfff), which is not text"
    return None
