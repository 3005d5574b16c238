"""Config loading: the example is valid, and every problem is reported with file, line, key."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import tmpfs
from dropscribe.config import rules, schema
from dropscribe.config.schema import InboxModel, RuleModel, SettingsModel
from dropscribe.errors import ConfigError
from dropscribe.loading import checked
from dropscribe.vocab.endpoints import EndpointModel
from dropscribe.vocab.settings import (
    FolderSettings,
    Format,
    HookModel,
    SpeakerCount,
    SubtitleRules,
    Task,
)

if TYPE_CHECKING:
    from dropscribe.vocab.config import Config

ROOT = Path(__file__).parent.parent
ENV = {"OPENAI_API_KEY": "sk-example"}


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return checked.load(path, environ=ENV if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, env)
    return [str(p) for p in info.value.problems]


MINIMAL = """\
endpoints:
  openai:
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
defaults:
  endpoint: openai
  model: whisper-1
inboxes:
  - path: inbox
"""


def example(folder: Path) -> Path:
    """config.example.yaml copied into ``folder`` beside the inbox it names (the
    checkout's own ./inbox may hold a user's quick-start files)."""
    (folder / "inbox").mkdir()
    return Path(shutil.copy(ROOT / "config.example.yaml", folder))


def test_example_config_is_valid(tmp_path):
    """config.example.yaml loads, with its inbox and rules resolved."""
    cfg = checked.load(example(tmp_path), environ=ENV)
    assert cfg.endpoints["openai"].api_key == "sk-example"
    assert cfg.endpoints["local"].kind == "local"
    assert cfg.inboxes[0].path == tmp_path / "inbox"
    assert [layer.folder for layer in cfg.inboxes[0].layers] == [None, None, "interviews", None]


def test_example_documents_every_key():
    """Every key the schema accepts appears, with a comment, in config.example.yaml."""
    text = (ROOT / "config.example.yaml").read_text()
    documented = set(re.findall(r"^\s*#?\s*-?\s*([a-z_]+):", text, re.MULTILINE))
    keys: set[str] = set()
    for model in (
        schema.ConfigModel,
        EndpointModel,
        schema.InboxModel,
        schema.RuleModel,
        schema.LogModel,
        schema.MetricsModel,
        HookModel,
        SubtitleRules,
        SpeakerCount,
    ):
        keys |= set(model.model_fields)
    assert keys - documented == set()


def test_example_config_needs_no_key(tmp_path):
    """As shipped, the example uses the local engine: no API key is needed to start."""
    cfg = checked.load(example(tmp_path), environ={})
    assert cfg.endpoints["openai"].api_key is None
    assert {layer.values.get("endpoint") for layer in cfg.inboxes[0].layers} <= {"local", None}


def test_minimal_config_gets_defaults(tmp_path):
    """Unset keys take documented defaults."""
    cfg = load_text(tmp_path, MINIMAL)
    assert cfg.workers == 8
    inbox = cfg.inboxes[0]
    assert inbox.recursive is True
    assert "*.opus" in inbox.include
    assert cfg.endpoints["openai"].timeout == 600


def test_every_problem_is_reported_at_once_with_line_and_key(tmp_path):
    """Unknown keys, bad values and missing ones are all listed, each with file:line and key."""
    text = """\
endpoints:
  openai:
    base_url: ftp://nope
    api_key_env: OPENAI_API_KEY
    colour: blue
defaults:
  endpoint: openai
  model: whisper-1
  temperature: 3
inboxes:
  - path: inbox
    formats: [txt, docx]
    languag: en
workers: 0
"""
    found = problems(tmp_path, text)
    file = str(tmp_path / "c.yaml")
    assert f"{file}:3: endpoints.openai.base_url: must be an http:// or https:// URL" in found[0]
    expected = {
        (5, "endpoints.openai.colour", "unknown key"),
        (9, "defaults.temperature", "less than or equal to 1"),
        (12, "inboxes[0].formats[1]", "Input should be"),
        (13, "inboxes[0].languag", "unknown key"),
        (14, "workers", "greater than or equal to 1"),
    }
    for line, key, words in expected:
        assert any(p.startswith(f"{file}:{line}: {key}:") and words in p for p in found), (
            line,
            key,
            found,
        )
    assert len(found) == 6


def test_missing_key_inbox_and_endpoint_reported_together(tmp_path):
    """A missing API key variable, a missing inbox folder and an unknown endpoint: three problems."""
    text = MINIMAL.replace("path: inbox", "path: nowhere\n    endpoint: groq")
    found = problems(tmp_path, text, env={})
    assert any(
        ":4: endpoints.openai.api_key_env: environment variable OPENAI_API_KEY is not set" in p
        for p in found
    )
    assert any(":9: inboxes[0].path: inbox" in p and "does not exist" in p for p in found)
    assert any(":10: inboxes[0].endpoint: unknown endpoint 'groq'" in p for p in found)


def test_duplicate_keys_are_errors(tmp_path):
    """YAML's silent last-one-wins for a repeated key is reported instead."""
    found = problems(tmp_path, MINIMAL + "workers: 2\nworkers: 3\n")
    assert any(":11: workers: duplicate key" in p for p in found)


def test_yaml_syntax_error_names_the_line(tmp_path):
    """Broken YAML is one problem with its line number."""
    found = problems(tmp_path, MINIMAL + "  - path: [unclosed\n")
    assert len(found) == 1
    assert "not valid YAML" in found[0]
    assert re.search(r"c\.yaml:1[01]:", found[0])


def test_api_key_file_and_credentials_directory(tmp_path):
    """api_key_file reads a file; a bare name is looked up in $CREDENTIALS_DIRECTORY first."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai-key").write_text("sk-from-systemd\n")
    text = MINIMAL.replace("api_key_env: OPENAI_API_KEY", "api_key_file: openai-key")
    cfg = load_text(tmp_path, text, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert cfg.endpoints["openai"].api_key == "sk-from-systemd"
    assert "sk-from-systemd" not in repr(cfg)
    found = problems(tmp_path, text, env={})
    assert any("api_key_file: key file" in p and "does not exist" in p for p in found)


def test_unreadable_key_and_prompt_files_say_why_without_quoting_them(tmp_path):
    """A key file that is not text and a prompt_file that is a folder are each reported
    with the system's reason; no byte of the key file is quoted."""
    (tmp_path / "key").write_bytes(b"sk-\xff\xfeTOPSECRET")
    (tmp_path / "prompts").mkdir()
    text = MINIMAL.replace("api_key_env: OPENAI_API_KEY", "api_key_file: key").replace(
        "  endpoint: openai\n", "  endpoint: openai\n  prompt_file: prompts\n"
    )
    found = problems(tmp_path, text, env={})
    assert any(
        "api_key_file: cannot read key file" in p and p.endswith(": not UTF-8 text") for p in found
    ), found
    assert any("prompt_file: cannot read" in p and p.endswith(": Is a directory") for p in found), (
        found
    )
    assert not any("SECRET" in p or "xff" in p or "0xff" in p for p in found)


def test_rules_and_settings_are_typed(tmp_path):
    """Formats and tasks become enums; rule layers keep only the keys they set."""
    text = MINIMAL.replace(
        "  - path: inbox",
        "  - path: inbox\n    formats: [srt, txt, srt]\n    rules:\n"
        "      - match: '*.m4a'\n        task: translate",
    )
    inbox = load_text(tmp_path, text).inboxes[0]
    assert inbox.layers[1].values["formats"] == (Format.SRT, Format.TXT)
    assert inbox.layers[2].values == {"task": Task.TRANSLATE}


def test_every_folder_setting_can_be_set_at_every_level_and_null_leaves_it_unset(tmp_path):
    """Each FolderSettings field is a key of defaults:, an inbox and a rule; a bare key sets nothing."""
    text = MINIMAL.replace(
        "  - path: inbox",
        "  - path: inbox\n    formats:\n    settle_seconds: 2\n    rules:\n"
        "      - match: '*.m4a'\n        after:\n        chunk_seconds: 60",
    ).replace("  model: whisper-1", "  model: whisper-1\n  formats: [srt]")
    cfg = load_text(tmp_path, text)
    inbox = cfg.inboxes[0]
    assert [layer.values for layer in inbox.layers] == [
        {"endpoint": "openai", "model": "whisper-1", "formats": (Format.SRT,)},
        {"settle_seconds": 2},
        {"chunk_seconds": 60},
    ]
    chosen = rules.effective(inbox, inbox.path / "a.m4a")
    assert (chosen.formats, chosen.settle_seconds, chosen.after) == ((Format.SRT,), 2, "keep")
    assert (chosen.chunk_seconds, chosen.name_template) == (60, "{stem}.{ext}")
    for name in FolderSettings.model_fields:  # the schema of a level is the settings' own
        for model in (SettingsModel, InboxModel, RuleModel):
            assert name in model.model_fields


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{stem}.txt", "must contain {ext}"),
        ("{stem}.{colour}.{ext}", "unknown placeholder"),
        ("sub/{stem}.{ext}", "must be a file name"),
    ],
)
def test_bad_name_templates_are_rejected(tmp_path, template, words):
    """A name_template that would clash, or names an unknown placeholder, is a config error."""
    found = problems(
        tmp_path, MINIMAL + f'  name_template: "{template}"\n'.replace("  name", "    name")
    )
    assert any(words in p and "name_template" in p for p in found), found


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args],
        capture_output=True,
        text=True,
        env=env or {"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )


def test_cli_check_config_exits_2_with_every_problem_and_no_traceback(tmp_path):
    """check-config prints one line per problem, exits 2, never a traceback."""
    (tmp_path / "c.yaml").write_text(MINIMAL.replace("path: inbox", "path: missing") + "extra: 1\n")
    result = run_cli("check-config", "-c", str(tmp_path / "c.yaml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"dropscribe: {tmp_path / 'c.yaml'}:") for line in lines)
    assert "Traceback" not in result.stderr


def test_cli_unreadable_config_is_one_line_exit_2(tmp_path):
    """A config file that does not exist: one clear line, exit 2."""
    result = run_cli("run", "-c", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dropscribe: {tmp_path / 'absent.yaml'}: cannot read config: No such file or directory"
    ]


def test_cli_check_config_ok(tmp_path):
    """A valid config: exit 0 and a one-line summary."""
    load_text(tmp_path, MINIMAL)
    result = run_cli(
        "check-config",
        "-c",
        str(tmp_path / "c.yaml"),
        env={"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "k"},
    )
    assert result.returncode == 0, result.stderr
    assert "ok (1 inbox, 1 endpoint)" in result.stdout


def test_cli_explain_says_inbox_rules_settings_and_ignore_reason(tmp_path):
    """explain names the inbox, the rules that apply, the settings, and why a file is ignored."""
    text = (
        MINIMAL.replace(
            "  - path: inbox",
            "  - path: inbox\n    rules:\n      - folder: calls\n        language: de\n"
            "      - match: '*.m4a'\n        task: translate",
        )
        + f"state_dir: {tmp_path / 'state'}\n"
    )
    load_text(tmp_path, text)
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "k"}
    cfg = str(tmp_path / "c.yaml")
    ok = run_cli("explain", "-c", cfg, str(tmp_path / "inbox" / "calls" / "x.wav"), env=env)
    assert ok.returncode == 0, ok.stderr
    assert "rule 0 (folder: calls): applies" in ok.stdout
    assert "rule 1 (match: *.m4a): does not apply" in ok.stdout
    assert "    language: de" in ok.stdout
    assert "    formats:\n    - txt\n" in ok.stdout, "settings as YAML, not Python reprs"
    assert "Format." not in ok.stdout
    assert "ignored: no, it is transcribed" in ok.stdout
    assert "ledger: none yet" in ok.stdout
    failed = tmp_path / "inbox" / "failed" / "calls" / "y.wav"
    failed.parent.mkdir(parents=True)
    failed.write_bytes(b"x")
    (failed.parent / "y.wav.error.json").write_text('{"reason": "HTTP 400: Invalid file format."}')
    quarantined = run_cli("explain", "-c", cfg, str(failed), env=env)
    assert f"  quarantined: {failed}\n    why: HTTP 400: Invalid file format.\n" in (
        quarantined.stdout
    )
    assert f"    to try again: dropscribe retry -c {cfg} {failed}\n" in quarantined.stdout
    junk = run_cli("explain", "-c", cfg, str(tmp_path / "inbox" / "x.wav.part"), env=env)
    assert junk.returncode == 1
    assert "ignored: in-flight or temporary name" in junk.stdout
    outside = run_cli("explain", "-c", cfg, str(tmp_path / "elsewhere.wav"), env=env)
    assert outside.returncode == 1
    assert "in no inbox" in outside.stdout


def test_check_config_refuses_infinite_or_nan_numbers_and_an_unsendable_key(tmp_path):
    """An infinite timeout, a NaN pause and an API key with a newline or non-ASCII are
    each refused by check-config with file, line and key; the key is never quoted."""
    text = MINIMAL.replace(
        "    api_key_env: OPENAI_API_KEY\n",
        "    api_key_env: OPENAI_API_KEY\n    timeout: .inf\n    pause_seconds: .nan\n",
    )
    (tmp_path / "inbox").mkdir()
    (tmp_path / "c.yaml").write_text(text)
    result = run_cli("check-config", "-c", str(tmp_path / "c.yaml"), env=ENV)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    where = f"dropscribe: {tmp_path / 'c.yaml'}"
    assert any(line.startswith(f"{where}:5: endpoints.openai.timeout:") for line in lines)
    assert any(line.startswith(f"{where}:6: endpoints.openai.pause_seconds:") for line in lines)
    (tmp_path / "c.yaml").write_text(MINIMAL)
    result = run_cli(
        "check-config", "-c", str(tmp_path / "c.yaml"), env={"OPENAI_API_KEY": "sk-a\nb"}
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"{where}:4: endpoints.openai.api_key_env: the API key from OPENAI_API_KEY holds"
        " a space or a control character (a stray newline or tab?)\n"
    )
    not_ascii = (
        f"{tmp_path / 'c.yaml'}:4: endpoints.openai.api_key_env: the API key from"
        " OPENAI_API_KEY holds a character that is not ASCII (pasted from a document?)"
    )
    assert problems(tmp_path, MINIMAL, {"OPENAI_API_KEY": "sk-ünï"}) == [not_ascii]


def test_status_explain_and_retry_need_no_key_and_take_a_state_dir(tmp_path):
    """Without the API key (a root shell beside the service), status, explain and retry
    run; check-config still wants it; --state-dir points them at another ledger."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "c.yaml").write_text(MINIMAL)
    config_path = str(tmp_path / "c.yaml")
    assert run_cli("check-config", "-c", config_path).returncode == 2
    elsewhere = tmp_path / "service-state"
    status = run_cli("status", "-c", config_path, "--state-dir", str(elsewhere))
    assert status.returncode == 0, status.stderr
    assert status.stdout == (
        f"no ledger yet at {elsewhere / 'ledger.sqlite3'}: the daemon has not run with this"
        " state_dir\n"
    )
    explained = run_cli("explain", "-c", config_path, str(tmp_path / "inbox" / "a.wav"))
    assert explained.returncode == 0, explained.stderr
    retried = run_cli("retry", "-c", config_path, "--all", "--state-dir", str(elsewhere))
    assert retried.returncode == 0, retried.stderr


@pytest.fixture
def read_only(tmp_path):
    """A folder on a read-only filesystem."""
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        yield folder


def test_check_config_refuses_an_unwritable_state_dir_and_inbox(tmp_path, read_only):
    """A state_dir or an inbox this user cannot write (here a read-only mount) is refused
    by check-config before the daemon could pay for an upload it cannot store."""
    text = MINIMAL.replace("path: inbox", f"path: {read_only}") + f"state_dir: {read_only}/s\n"
    (tmp_path / "c.yaml").write_text(text)
    result = run_cli("check-config", "-c", str(tmp_path / "c.yaml"), env=ENV)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if ": warning: " not in line]
    where = f"dropscribe: {tmp_path / 'c.yaml'}"  # (warned too: the state_dir in the inbox)
    assert lines[0].startswith(f"{where}: state_dir {read_only}/s cannot be written")
    # A read-only mount is named as such (under systemd: outside ReadWritePaths=), not as
    # a permission to change
    assert lines[1].startswith(f"{where}: inbox {read_only} is on a read-only file system here")
    assert "ReadWritePaths=" in lines[1]


def test_check_config_refuses_kind_local_without_faster_whisper(tmp_path, monkeypatch):
    """kind: local in use where faster-whisper is not installed is a problem that says
    how to install it; nested inboxes are a warning."""
    import importlib.util

    from dropscribe.config import preflight

    (tmp_path / "inbox" / "sub").mkdir(parents=True)
    text = MINIMAL.replace("  openai:\n", "  here:\n    kind: local\n  openai:\n").replace(
        "endpoint: openai", "endpoint: here"
    )
    text += "  - path: inbox/sub\n"
    (tmp_path / "c.yaml").write_text(text)
    cfg = checked.load(tmp_path / "c.yaml", environ=ENV)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "faster_whisper" else real(name)
    )
    needs = (
        "endpoints.here: kind: local needs faster-whisper, which is not installed here:"
        " pip install 'dropscribe[local]' (into the same environment)"
    )
    assert preflight.problems(cfg) == [needs]
    assert preflight.warnings(cfg)[0].startswith(f"inbox {tmp_path / 'inbox' / 'sub'} is inside")
