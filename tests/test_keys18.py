"""Config keys YAML does not read as text (``1:``, ``2024-01-01:``, ``true:``, ``null:``,
``[a, b]:``, an alias), repeated keys, and characters or tags YAML refuses: each
told by ``dropscribe check-config`` and ``dropscribe run`` with the file, the key's
own line and the key as the file spells it, every problem at once, exit 2, never a
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropscribe.config import keys
from dropscribe.errors import ConfigError
from dropscribe.loading import checked
from test_config import MINIMAL

if TYPE_CHECKING:
    from pathlib import Path

ENV = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test"}
if "PYTHONPATH" in os.environ:  # a checkout other than the installed one
    ENV["PYTHONPATH"] = os.environ["PYTHONPATH"]
MUST = "a key must be text, and YAML reads this one as "
NUMBER = 'put it in quotes ("{}": ...) if it is meant as a name'

BASE = MINIMAL + '    rules:\n      - match: "*.wav"\n        language: de\n'


def run(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", command, "-c", str(config)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
        check=False,
    )


def told(tmp_path: Path, text: str, command: str = "check-config") -> list[str]:
    """What ``command`` prints for a config of ``text``, each line without the
    "dropscribe: FILE:" in front; it must exit 2 without a traceback."""
    (tmp_path / "inbox").mkdir(exist_ok=True)
    config = tmp_path / "c.yaml"
    config.write_text(text)
    done = run(command, config)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith(f"dropscribe: {config}:") for line in lines), lines
    return [line.removeprefix(f"dropscribe: {config}:") for line in lines]


SCALAR_KEYS = """\
endpoints:
  openai:
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    1: x
    models:
      whisper-1:
        0x1F: y
defaults:
  endpoint: openai
  model: whisper-1
  2024-01-01: y
  glossary:
    eefa: Aoife
    3.5: three and a half
inboxes:
  - path: inbox
    yes: 1
    rules:
      - match: "*.wav"
        null: 3
        ~: 4
        !!int "7": 5
2025-02-03 10:00:00: z
"""


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_key_that_is_not_text_is_told_at_its_line_as_written(tmp_path, command):
    """Numbers, dates, booleans and nulls as keys at every depth: one problem each, at
    the key's own line with the key as written, and nothing else (exit 2)."""
    found = told(tmp_path, SCALAR_KEYS, command)
    assert found == [
        f"5: endpoints.openai.1: {MUST}a number: {NUMBER.format(1)}",
        f"8: endpoints.openai.models.whisper-1.0x1F: {MUST}a number: {NUMBER.format('0x1F')}",
        f"12: defaults.2024-01-01: {MUST}a date: {NUMBER.format('2024-01-01')}",
        f"15: defaults.glossary.3.5: {MUST}a number: {NUMBER.format(3.5)}",
        f"18: inboxes[0].yes: {MUST}true or false: {NUMBER.format('yes')}",
        f"21: inboxes[0].rules[0].null: {MUST}null (no value): {NUMBER.format('null')}",
        f"22: inboxes[0].rules[0].~: {MUST}null (no value): {NUMBER.format('~')}",
        f'23: inboxes[0].rules[0].!!int "7": {MUST}a number: {NUMBER.format(7)}',
        f"24: 2025-02-03 10:00:00: {MUST}a date: {NUMBER.format('2025-02-03 10:00:00')}",
    ]


def test_lists_mappings_aliases_and_block_keys_are_told_at_their_lines(tmp_path):
    """A list or a mapping as a key (flow or block), an alias as a key and a ``? |``
    block key: each told at its line, as written on one line, all at once."""
    text = """\
endpoints:
  openai:
    base_url: &url https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    [a, b]: 1
defaults:
  endpoint: &name openai
  model: whisper-1
  {a: 1}: 2
  *name : 3
  day: &day 2024-01-01
inboxes:
  - path: inbox
    ? - x
      - y
    : 4
    *day : 5
    ? |
      block
      key
    : 6
"""
    found = told(tmp_path, text)
    assert found == [
        f"5: endpoints.openai.[a, b]: {MUST}a list",
        f"9: defaults.{{a: 1}}: {MUST}a mapping",
        "10: defaults.openai: unknown key",  # the alias's line, not its anchor's
        "11: defaults.day: unknown key",
        f"14: inboxes[0].- x - y: {MUST}a list",
        f"17: inboxes[0].*day: {MUST}a date: {NUMBER.format('2024-01-01')}",
        '18: inboxes[0]."block\\nkey\\n": unknown key',
    ]


def test_a_repeated_key_names_both_its_lines(tmp_path):
    """A key given twice (once in quotes) is told at the second, naming the first."""
    text = """\
endpoints:
  openai:
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
defaults:
  endpoint: openai
  model: whisper-1
  "model": whisper-2
inboxes:
  - path: inbox
workers: 2
workers: 3
"""
    again = "duplicate key: also on line {}, and YAML would silently keep only the last one"
    assert told(tmp_path, text) == [
        f"8: defaults.model: {again.format(7)}",
        f"12: workers: {again.format(11)}",
    ]


def test_what_an_alias_repeats_is_told_once_where_its_anchor_is(tmp_path):
    """A glossary with a date as a key and a NUL in a value, repeated by aliases in two
    rules: each problem told once, at the anchor's line and key path."""
    text = BASE + (
        '        glossary: &words {2024-01-01: date, eefa: "Ao\\0ife"}\n'
        "      - {match: '*.mp3', glossary: *words}\n"
        "      - {match: '*.ogg', glossary: *words}\n"
    )
    found = told(tmp_path, text)
    date = [p for p in found if "2024-01-01" in p]
    nul = [p for p in found if "which no path, name or header can" in p]
    assert date == [
        f"13: inboxes[0].rules[0].glossary.2024-01-01: {MUST}a date: "
        + (NUMBER.format("2024-01-01"))
    ]
    assert len(nul) == 1
    assert nul[0].startswith("13: inboxes[0].rules[0].glossary.eefa: holds a NUL"), nul


def test_a_lone_surrogate_in_a_key_and_yaml_errors_are_one_clear_line(tmp_path):
    """A key holding a lone surrogate is one problem at its line (no pydantic echo at
    line 1); a repeated anchor and a second document say what was found where."""
    surrogate = told(tmp_path, BASE + '"a\\ud800": 1\n')
    assert surrogate == ["13: a key holds a lone surrogate (\\ud800-\\udfff), which is not text"]
    anchors = told(tmp_path, BASE + "x: &a 1\ny: &a 2\n")
    assert anchors == [
        (
            "14: not valid YAML: found duplicate anchor 'a'; first occurrence on line 13,"
            " second occurrence"
        ),
    ]
    documents = told(tmp_path, BASE + "---\nworkers: 2\n")
    assert documents == [
        (
            "13: not valid YAML: expected a single document in the stream on line 1, but"
            " found another document"
        ),
    ]


REFUSED = [  # the file's bytes, and what follows "dropscribe: FILE:"
    (b"endpoints:\n  a: x\0y\n", "2: not valid YAML: holds a NUL character (\\0)"),
    (b"a: 1\nb: \x7f\n", "2: not valid YAML: holds the character U+007F"),
    (b"endpoints:\n  a: caf\xe9\n", " cannot read config: not UTF-8 text"),
]


def test_a_character_yaml_refuses_is_one_line_with_its_line_number(tmp_path):
    """A NUL or a DEL anywhere, and bytes that are not UTF-8: one problem each, with
    the line it is on, exit 2, no traceback."""
    config = tmp_path / "c.yaml"
    for data, expected in REFUSED:
        config.write_bytes(data)
        done = run("check-config", config)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith(f"dropscribe: {config}:{expected}"), done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_a_long_value_repeated_by_aliases_is_checked_once(tmp_path, monkeypatch):
    """A 400,000-character value (not ASCII) repeated by 30,000 aliases is checked for a
    NUL or a surrogate once, not again at each alias (that took 9 s of CPU)."""
    from dropscribe.config import document

    (tmp_path / "inbox").mkdir()
    config = tmp_path / "c.yaml"
    aliases = ",".join(["*a"] * 30_000)
    config.write_text(f"x_long: &a {'é' * 400_000}\nx_list: [{aliases}]\n" + BASE)
    checks: list[int] = []
    unusable = document._unusable

    def counted(node):
        if len(str(node.value)) == 400_000:
            checks.append(id(node))
        return unusable(node)

    monkeypatch.setattr(document, "_unusable", counted)
    with pytest.raises(ConfigError) as info:
        checked.load(config, environ=ENV)
    assert len(checks) == 1
    assert [p.key for p in info.value.problems] == ["x_long", "x_list"]


def test_python_tags_are_each_told_and_never_built(tmp_path):
    """``!!python/...`` tags (a value, a key, one inside a list) are each told with their
    line and key, all at once, and nothing of them runs."""
    canary = tmp_path / "ran"
    text = f"""\
endpoints: !!python/object/apply:os.system ["touch {canary}"]
defaults:
  prompt: !!python/name:os.system ''
  !!python/none x: 1
inboxes:
  - path: inbox
    include: [a, !custom b]
"""
    found = told(tmp_path, text)
    plain = ", which no setting takes: a config holds plain values"
    expected = [
        f"1: endpoints: has the tag !!python/object/apply:os.system{plain}",
        f"3: defaults.prompt: has the tag !!python/name:os.system{plain}",
        f"4: defaults.!!python/none x: {MUST}a value tagged !!python/none",
        f"7: inboxes[0].include[1]: has the tag !custom{plain}",
    ]
    assert len(found) == len(expected)
    assert all(line.startswith(start) for line, start in zip(found, expected, strict=True))
    assert not canary.exists()


# --------------------------------------------------------------- any key, anywhere

SPELLED = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.integers(0, 10**6).map(lambda n: f"0x{n:x}"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from([".inf", "-.Inf", ".NaN", "1_000", "1:30", "0b101", "017"]),
    st.sampled_from(["true", "False", "yes", "No", "on", "OFF", "null", "~", "Null"]),
    st.dates().map(str),
    st.datetimes().map(lambda moment: moment.isoformat(sep=" ")),
    st.lists(st.integers(0, 9), max_size=3).map(str),
    st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2).map(
        lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
    ),
    st.sampled_from(["!!int 5", '!!float "2"', "!!binary aGk=", "!!set {a}", "!!bool yes"]),
)
# (the index of BASE's line the key goes before, its indent, the key path of its mapping)
PLACES = [
    (0, "", ""),
    (3, "    ", "endpoints.openai."),
    (6, "  ", "defaults."),
    (9, "    ", "inboxes[0]."),
    (11, "        ", "inboxes[0].rules[0]."),
]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(SPELLED, st.sampled_from(PLACES))
def test_any_key_that_is_not_text_is_one_problem_at_a_line_that_holds_it(
    tmp_path_factory, spelled, place
):
    """Any key YAML reads as other than text, at any depth: exactly one problem, at
    the line that holds the key, naming it as written; never another exception."""
    key = yaml.compose(f"{spelled}: x").value[0][0]
    if keys.is_text(key):  # 1e+20, 1:30:x and the like are text to YAML 1.1
        return
    before, indent, within = place
    lines = BASE.splitlines()
    lines.insert(before, f"{indent}{spelled}: x")
    folder = tmp_path_factory.mktemp("keys")
    (folder / "inbox").mkdir()
    config = folder / "c.yaml"
    config.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        checked.load(config, environ=ENV)
    [problem] = info.value.problems
    assert problem.line is not None
    assert problem.line >= 1
    assert spelled in lines[problem.line - 1]
    assert problem.key == within + spelled
    assert problem.message.startswith("a key must be text, and YAML reads this one as ")
