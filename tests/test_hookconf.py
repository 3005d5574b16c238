"""The pure pieces behind bytes-safe hooks and unusable config values: the hook's pipes,
the file reader, the YAML guard, and a fuzz of the loader with odd YAML values."""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import named, wait_for
from dropscribe.config import document, files
from dropscribe.errors import ConfigError
from dropscribe.loading import checked as configmod
from dropscribe.outputs import hooks
from dropscribe.vocab.settings import HookModel

PAYLOAD = {"file": "/in/a.wav", "outcome": "done", "sidecars": ["/in/a.txt"], "inbox": "in"}


def run_hook(script: str, payload: dict[str, Any] | None = None, timeout: float = 20) -> float:
    """Run a Python hook; the seconds it took."""
    hook = HookModel(command=(sys.executable, "-c", script), timeout=timeout)
    began = time.monotonic()
    hooks.run(hook, payload or PAYLOAD)
    return time.monotonic() - began


def test_a_hook_flooding_its_stderr_is_kept_to_the_cap(events):
    """40 MiB on stderr and stdout: the hook ends, and the event shows only the tail."""
    run_hook(
        "import sys\nfor _ in range(640): sys.stderr.write('e' * 65536); print('o' * 65536)\n"
        "sys.stderr.write('END'); sys.exit(1)"
    )
    failed = named(events, "hook.failed")[0]
    assert failed["stderr"].endswith("eEND")
    assert len(failed["stderr"]) == hooks.SHOWN


def test_a_hook_that_never_reads_a_large_stdin_still_runs(events):
    """A JSON document larger than a pipe holds, given to a hook that ignores it."""
    payload = {**PAYLOAD, "error": "x" * 1_000_000}
    run_hook("pass", payload)
    assert named(events, "hook.ran")


def test_a_hook_that_outlives_its_timeout_is_ended_with_its_children(events, tmp_path):
    """A hook and the child it leaves holding its pipes are both killed at the timeout."""
    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)"
    )
    took = run_hook(script, timeout=1)
    assert took < 10
    assert named(events, "hook.failed")[0]["error"] == "timed out after 1s"
    pid = int(pidfile.read_text())
    wait_for(
        lambda: not Path(f"/proc/{pid}").exists() or "Z" in _state(pid),
        timeout=10,
        what="the hook's child to be killed with it",
    )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_a_hook_that_cannot_start_is_a_failed_hook(events):
    """A command that does not exist, or an argument holding a NUL, is hook.failed."""
    for command in (("/nonexistent/hook",), ("echo", "a\0b")):
        hooks.run(HookModel(command=command), PAYLOAD)
    assert len(named(events, "hook.failed")) == 2


def test_files_read_refuses_what_is_not_a_small_regular_file(tmp_path):
    """A FIFO, a device, a folder and a file over the limit are refused at once."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 11)
    reasons = []
    for path, limit in ((tmp_path / "fifo", 10), (Path("/dev/zero"), 10), (tmp_path, 10)):
        with pytest.raises(OSError) as info:
            files.read(path, limit)
        reasons.append(info.value.strerror)
    with pytest.raises(OSError, match="over 10 bytes"):
        files.read(tmp_path / "big", 10)
    assert reasons == [
        "is a FIFO, not a regular file",
        "is a device, not a regular file",
        "Is a directory",
    ]
    assert files.read(tmp_path / "big", 11) == b"x" * 11


def test_paths_with_an_unknown_user_a_nul_a_surrogate_or_a_loop_are_unusable(tmp_path):
    """expanded/resolved say why a path cannot be used instead of raising Python's errors."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for value in ("~nosuchuser/x", "a\0b", "\ud800/x", str(tmp_path / "loop" / "x")):
        with pytest.raises(files.UnusableError):
            files.resolved(value, tmp_path)


def test_yaml_merge_keys_and_anchors_still_load(tmp_path):
    """A config sharing settings through an anchor and a merge key loads as before."""
    (tmp_path / "inbox").mkdir()
    (tmp_path / "c.yaml").write_text(
        "endpoints:\n  openai: {base_url: 'https://api.openai.com/v1', api_key_env: K}\n"
        "common: &common {endpoint: openai, model: whisper-1}\n"
        "inboxes:\n  - path: inbox\n    <<: *common\n"
    )
    with pytest.raises(ConfigError) as info:  # common: is not a key of ours
        configmod.load(tmp_path / "c.yaml", environ={"K": "k"})
    assert [p.key for p in info.value.problems] == ["common"]


def test_the_depth_limit_leaves_room_for_the_deepest_real_key():
    """A value at MAX_DEPTH levels loads; one level more is refused with its key path."""
    ok = "a: " + "[" * (document.MAX_DEPTH - 1) + "]" * (document.MAX_DEPTH - 1)
    assert document.parse(ok, "c.yaml").raw is not None
    with pytest.raises(ConfigError) as info:
        document.parse("a: " + "[" * document.MAX_DEPTH + "]" * document.MAX_DEPTH, "c.yaml")
    assert info.value.problems[0].key.startswith("a[0]")


MINIMAL: dict[str, Any] = {
    "endpoints": {"openai": {"base_url": "https://api.openai.com/v1", "api_key_env": "K"}},
    "defaults": {"endpoint": "openai", "model": "whisper-1"},
    "inboxes": [{"path": "inbox"}],
}
KEYS = [
    ("workers",),
    ("state_dir",),
    ("rescan_seconds",),
    ("defaults", "prompt_file"),
    ("defaults", "output_dir"),
    ("defaults", "name_template"),
    ("defaults", "hook"),
    ("defaults", "hook", "command"),
    ("defaults", "hook", "webhook"),
    ("defaults", "subtitles"),
    ("defaults", "speakers"),
    ("inboxes", 0, "path"),
    ("inboxes", 0, "failed_dir"),
    ("inboxes", 0, "rules"),
    ("endpoints", "openai", "api_key_file"),
    ("endpoints", "openai", "base_url"),
    ("endpoints", "openai", "models"),
    ("ledger",),
    ("ledger", "url"),
    ("metrics",),
    ("inboxes",),
]
ODD = [
    "~nosuchuser/x",
    "/dev/zero",
    "a\0b",
    "\ud800",
    "2001-13-45",
    "{stem:>99999}.{ext}",
    "{stem!r}.{ext}",
    "http://[::1/v1",
    "http://a:99999/x",
    "postgresql://[::1/d",
    "a" * 5000,
    "/" * 5000,
    "~/" + "a/" * 3000,
]
RAW = [
    "x_int: " + "1" * 5000,
    "? [a, b]\n: 1",
    "x_bin: !!binary AAAA",
    "x_bool: !!bool maybe",
    "x_time: !!timestamp 2001-99-99",
    "x_py: !!python/name:os.system",
    "x_alias: *undefined",
    "x_self: &s [*s]",
    "? &k [*k]\n: 1",
    "x_map: &m {a: *m}",
    "--- 1\n--- 2",
]
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(),
        st.sampled_from(ODD),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["path", "command", "url", "min", "x"]), inner, max_size=3),
    ),
    max_leaves=10,
)


def _place(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    where: Any = doc
    for part in path[:-1]:
        if isinstance(where, list) != isinstance(part, int):
            return  # an earlier edit made this a list (or a mapping): nothing to place
        if isinstance(where, list):
            while len(where) <= part:
                where.append({})
        elif not isinstance(where.get(part), dict | list):
            where[part] = {}
        where = where[part]
        if not isinstance(where, dict | list):
            return
    if isinstance(where, list) != isinstance(path[-1], int):
        return
    if isinstance(where, list):
        while len(where) <= path[-1]:
            where.append({})
    where[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4),
    st.lists(st.sampled_from(RAW), max_size=2),
)
def test_the_loader_raises_nothing_but_config_errors_for_odd_yaml(tmp_path_factory, edits, raws):
    """Odd values at any key (and odd YAML after them) load or are ConfigErrors of ours,
    never another exception and never the loader's own "a bug in dropscribe"."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "inbox").mkdir()
    doc = copy.deepcopy(MINIMAL)
    for path, value in edits:
        _place(doc, path, value)
    config = folder / "c.yaml"
    text = yaml.safe_dump(doc) + "\n".join(raws) + "\n"
    config.write_text(text, errors="surrogatepass")
    try:
        configmod.load(config, environ={"K": "k"})
    except ConfigError as exc:
        bugs = [p for p in exc.problems if "a bug in dropscribe" in p.message]
    else:
        bugs = []
    assert not bugs, text
