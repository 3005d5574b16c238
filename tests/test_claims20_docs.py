"""The docs against the code, mechanically: every config key the schema accepts (nested
models too) is in config.example.yaml, a default the example states is the schema's,
every event name the docs give is one the code has, every warning or error the code
logs with an ``action=`` is named in the docs, and every test file docs/promises.md
names exists, and the README's command table gives each command's options."""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dropscribe.config.schema import ConfigModel

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "daemon" / "dropscribe"
EXAMPLE = (ROOT / "config.example.yaml").read_text()
DOCS = {p: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
EVENT = re.compile(r"[a-z_]+(?:\.[a-z_]+)+")
LEVELS = {"warning", "error", "critical", "exception"}


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (in a union, a tuple, a dict's values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models(arg)]


def schema_fields() -> dict[str, list[tuple[str, Any]]]:
    """Every key the config file may hold, by name: (its path, its default)."""
    found: dict[str, list[tuple[str, Any]]] = {}
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            found.setdefault(name, []).append((prefix + name, field.default))
            for inner in _models(field.annotation):
                walk(inner, f"{prefix}{name}.")

    walk(ConfigModel, "")
    return found


def example_comments() -> dict[str, str]:
    """Each key the example explains in a comment ``# key: ...``, with its whole comment
    (continuation lines joined); the first explanation of a name wins."""
    said: dict[str, str] = {}
    key = None
    for line in EXAMPLE.splitlines():
        text = line.strip()
        if start := re.fullmatch(r"# ?([a-z_]+): (.*)", text):
            key = start.group(1)
            said.setdefault(key, start.group(2))
        elif text.startswith("#  ") and key is not None:
            said[key] += " " + text.lstrip("# ")
        else:
            key = None
    return said


@functools.cache  # the package is parsed once for both tests
def code_events() -> tuple[set[str], list[tuple[str, str, int]]]:
    """Every string in the package shaped like an event name; and each warning or
    error logged with an ``action=`` (or ``fix=``) for a person: (event, file, line)."""
    names: set[str] = set()
    loud: list[tuple[str, str, int]] = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if EVENT.fullmatch(node.value):
                    names.add(node.value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and any(k.arg in {"action", "fix"} for k in node.keywords)
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                loud.append((str(node.args[0].value), str(path.relative_to(ROOT)), node.lineno))
    return names, loud


def test_every_schema_key_is_explained_in_the_example_or_the_docs():
    """Each key of every level of the schema (chat:, summary:, budget:, ledger: ...) is
    written as `key:` in config.example.yaml or named in backticks in README/docs."""
    documented = set(re.findall(r"^\s*#?\s*-?\s*([a-z_]+):", EXAMPLE, re.MULTILINE))
    documented |= set(re.findall(r"[\s{,]([a-z_]+):", EXAMPLE))
    docs = "\n".join(DOCS.values())
    missing = [
        path
        for name, places in schema_fields().items()
        for path, _ in places
        if name not in documented and f"`{name}" not in docs
    ]
    assert missing == []


def _same(stated: str, default: Any) -> bool:
    if isinstance(default, bool):
        return stated == str(default).lower()
    if isinstance(default, int | float):
        try:
            return float(stated) == float(default)
        except ValueError:
            return False
    return stated == str(default)


def test_a_default_the_example_states_is_the_schemas():
    """Where a comment says `(default N)` of a key whose default is one plain value in
    the schema (a number, true/false, a word), N is that value."""
    fields = schema_fields()
    checked, wrong = [], []
    for key, comment in example_comments().items():
        stated = re.search(r"\(default:? ([\w.-]+)[;,):]", comment)
        plain = [d for _, d in fields.get(key, []) if isinstance(d, bool | int | float | str)]
        if stated is None or len(set(map(repr, plain))) != 1:
            continue  # no default said, or the name's default differs by level
        checked.append(key)
        if not _same(stated.group(1), plain[0]):
            wrong.append((key, stated.group(1), plain[0]))
    assert wrong == []
    assert len(checked) >= 15, checked  # the check still finds what it checks


def test_every_event_the_docs_name_is_one_the_code_has():
    """A backticked name like `file.done` or `hook.failed` in README or docs, of a family
    the code logs (file., hook., endpoint. ...), is a string in the package."""
    names, _ = code_events()
    families = {name.split(".")[0] for name in names}
    unknown = [
        (path.name, found)
        for path, text in DOCS.items()
        for found in re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)", text)
        if found.split(".")[0] in families
        and found not in names
        and not found.endswith((".yaml", ".json", ".bin", ".md"))
    ]
    assert unknown == []


def test_every_warning_with_an_action_is_named_in_the_docs():
    """An event the code logs at warning or error with an action= (or fix=) for a person
    can be looked up: its name appears in README or docs."""
    _, loud = code_events()
    docs = "\n".join(DOCS.values())
    assert len(loud) > 30  # the walk still finds the calls
    unnamed = sorted({(event, where) for event, where, _ in loud if event not in docs})
    assert unnamed == []


def test_every_test_docs_promises_names_exists():
    """docs/promises.md names its tests as `tests/test_x.py` or `tests/test_x*.py`; each
    names at least one file in tests/."""
    text = (ROOT / "docs" / "promises.md").read_text()
    named = re.findall(r"tests/(test_[\w*]+(?:\.py)?)", text)
    assert len(named) >= 10
    assert [n for n in named if not list((ROOT / "tests").glob(n))] == []


def _help(*words: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", *words, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _options(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", text))


def test_the_readmes_command_table_has_each_commands_options():
    """Each row of the README's command table gives exactly the options its command's
    --help shows (besides -h, and --state-dir, which the README explains once), and a
    command --help lists that the table leaves out is named in the README or docs."""
    readme = DOCS[ROOT / "README.md"]
    rows = re.findall(r"^\| `([a-z-]+)((?: [^`]*)?)` \|", readme, re.MULTILINE)
    table = {command: _options(rest) for command, rest in rows}
    assert "--state-dir DIR" in readme
    listed = re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", _help(), re.MULTILINE)
    assert len(listed) >= 8, listed
    docs = "\n".join(DOCS.values())
    differ = {}
    for command in listed:
        if command not in table:
            assert f"`{command} " in docs or f"dropscribe {command} " in docs, command
            continue
        usage = _help(command).split("\n\n")[0]
        shown = _options(usage.split(command, 1)[1]) - {"-h", "--state-dir"}
        if shown != table[command]:
            differ[command] = (sorted(table[command]), sorted(shown))
    assert differ == {}
