"""The real ``dropscribe`` process under attack through its hooks and its config file:
a hook printing bytes that are not UTF-8 for a recording whose name holds a newline
and a Latin-1 byte; config values no daemon can use (an unknown ``~user``, a NUL, a
value nested 3,000 deep, an alias bomb, a FIFO or a device where a file is wanted,
a wait past what Python can wait), refused by check-config with file:line:key and
exit 2, and by a running daemon's SIGHUP, which keeps the running config."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.slow

HOOK = r"""
import os, sys
body = sys.stdin.buffer.read()
with open(sys.argv[1], "wb") as out:
    out.write(body)
with open(sys.argv[1] + ".env", "wb") as out:
    out.write(os.environb[b"DROPSCRIBE_FILE"])
sys.stdout.buffer.write(b"wrote caf\xe9.txt\n")
sys.stderr.buffer.write(b"caf\xe9 \xff\xfe\n")
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_hook_printing_latin1_never_fails_a_recording_named_with_a_newline(setup, exit_code):
    """A hook printing Latin-1 bytes (exiting 0 or 3) leaves the recording done, and its
    stdin JSON and DROPSCRIBE_FILE name a file called "a<newline>b<0xe9>.wav" exactly."""
    got = setup.root / "hook-stdin.json"
    setup.data["defaults"]["hook"] = {
        "command": [sys.executable, "-c", HOOK, str(got), str(exit_code)]
    }
    recording = os.fsencode(setup.inbox) + b"/a\nb\xe9.wav"
    make_wav(setup.inbox / os.fsdecode(b"a\nb\xe9.wav"))
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait(timeout=60) == 0
    assert not daemon.named("job.crashed")
    assert len(daemon.named("file.done")) == 1
    assert os.path.exists(recording)
    assert not (setup.inbox / "failed").exists()
    if exit_code:
        assert daemon.named("hook.failed")[0]["stderr"] == "caf\ufffd \ufffd\ufffd\n"
    else:
        assert daemon.named("hook.ran")
    told = json.loads(got.read_bytes())
    assert os.fsencode(told["file"]) == recording
    assert [os.fsencode(p) for p in told["sidecars"]] == [recording[: -len(".wav")] + b".txt"]
    assert (setup.root / "hook-stdin.json.env").read_bytes() == recording


# ------------------------------------------------------------ config values nobody can use


def deep(setup) -> str:
    setup.data.pop("workers")
    return "workers: " + "[" * 3000 + "]" * 3000 + "\n"


def alias_bomb(_setup) -> str:
    """Four levels of twenty aliases: 160,000 values from 80 lines."""
    lines = ["bomb:", "  l0: &l0 [" + ", ".join(["x"] * 20) + "]"]
    lines += [f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 20) + "]" for n in range(1, 4)]
    return "\n".join(lines) + "\n"


def fifo_prompt(setup) -> str:
    os.mkfifo(setup.root / "prompt.fifo")
    setup.data["defaults"]["prompt_file"] = str(setup.root / "prompt.fifo")
    return ""


def fifo_key(setup) -> str:
    os.mkfifo(setup.root / "key.fifo")
    endpoint = setup.data["endpoints"]["local"]
    endpoint.pop("api_key_env")
    endpoint["api_key_file"] = str(setup.root / "key.fifo")
    return ""


def device_key(setup) -> str:
    endpoint = setup.data["endpoints"]["local"]
    endpoint.pop("api_key_env")
    endpoint["api_key_file"] = "/dev/null"
    return ""


def setting(*path: Any, value: Any) -> Callable[[Any], str]:
    """A case that sets the config key at ``path`` to ``value``."""

    def change(setup) -> str:
        where = setup.data
        for part in path[:-1]:
            where = where[part]
        where[path[-1]] = value
        return ""

    return change


def text(raw: str) -> Callable[[Any], str]:
    """A case that adds ``raw`` YAML at the end of the config."""
    return lambda _setup: raw


# id -> (what the case does, the key of the problem, words in it)
BAD = {
    "unknown-user": (
        setting("inboxes", 0, "path", value="~nosuchuser/in"),
        "inboxes[0].path",
        "no user",
    ),
    "nul-in-a-path": (
        setting("defaults", "output_dir", value="out\0put"),
        "defaults.output_dir",
        "NUL",
    ),
    "nul-in-a-hook": (
        setting("defaults", "hook", value={"command": ["echo", "a\0b"]}),
        "defaults.hook.command[1]",
        "NUL",
    ),
    "nested-3000-deep": (deep, "workers[0][0]", "nested deeper than"),
    "alias-bomb": (alias_bomb, "bomb.", "more than 100,000 values"),
    "fifo-prompt-file": (fifo_prompt, "defaults.prompt_file", "is a FIFO"),
    "fifo-key-file": (fifo_key, "endpoints.local.api_key_file", "is a FIFO"),
    "device-key-file": (device_key, "endpoints.local.api_key_file", "is a device"),
    "alias-holds-itself": (text("x_self: &s [*s]\n"), "x_self[0]", "holds itself"),
    "5000-digit-int": (text("shutdown_grace: " + "9" * 5000 + "\n"), "shutdown_grace", "5,000 c"),
    # attack19: no message could print its value (a traceback, "a bug in dropscribe")
    "5000-hex-digits": (
        text("shutdown_grace: 0x" + "f" * 5000 + "\n"),
        "shutdown_grace",
        "5,002 c",
    ),
    # attack19: YAML 1.1's base 60, built in time the square of its length (55 s for 1 MB)
    "base-60": (text("shutdown_grace: 1" + ":1" * 200_000 + "\n"), "shutdown_grace", "400,001 c"),
    "month-13": (text("bad_date: 2001-13-45\n"), "bad_date", "month must be in 1..12"),
    "bool-tag": (text("bad_bool: !!bool maybe\n"), "bad_bool", "cannot be read"),
    "date-key": (text("2024-01-01: x\n"), "2024-01-01", "reads this one as a date"),
    "wait-past-python": (setting("rescan_seconds", value=1e300), "rescan_seconds", "less than"),
    "template-width": (
        setting("defaults", "name_template", value="{stem:>99999}.{ext}"),
        "defaults.name_template",
        "no format spec",
    ),
    "url-httpx-refuses": (
        setting("endpoints", "local", "base_url", value="http://[::1/v1"),
        "endpoints.local.base_url",
        "must be an http",
    ),
}


def write_bad(setup, case: str) -> None:
    """The config of ``setup`` with the bad value of ``case`` in it."""
    change, _key, _words = BAD[case]
    extra = change(setup)
    setup.write()
    with setup.config_path.open("a") as config:
        config.write(extra)


def refused(lines: list[str], setup, case: str) -> bool:
    """Whether ``lines`` name the file, a line, the case's key and its reason."""
    _change, key, words = BAD[case]
    where = re.escape(f"{setup.config_path}:")
    shape = re.compile(rf"{where}\d+: {re.escape(key)}[^ ]*: .*{re.escape(words)}")
    return any(shape.search(line) for line in lines)


@pytest.mark.parametrize("case", list(BAD))
def test_check_config_refuses_each_unusable_value_with_file_line_and_key(setup, case):
    """check-config on a config with one unusable value prints file:line: key: why for
    it, exits 2 and prints no traceback (never waits on a FIFO, never reads a device)."""
    write_bad(setup, case)
    done = setup.command("check-config", write=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert refused(done.stderr.splitlines(), setup, case), done.stderr


RELOADED = [
    "unknown-user",
    "nul-in-a-path",
    "nested-3000-deep",
    "alias-bomb",
    "alias-holds-itself",
    "5000-hex-digits",
    "date-key",
    "wait-past-python",
]


FIFO_CASES = {  # a file the config names, or the config itself, replaced by a FIFO
    "prompt-file-becomes-a-fifo": ("prompt.txt", "defaults.prompt_file: cannot read"),
    "config-becomes-a-fifo": ("dropscribe.yaml", "cannot read config"),
}


def refused_at_reload(setup: Any, spoil: Callable[[], object]) -> list[str]:
    """A running daemon's SIGHUP after ``spoil()`` made its config unusable: the problems
    config.reload_failed tells; the daemon stays up and transcribes a file dropped after
    with the config it had."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started", timeout=60)
        spoil()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reload_failed", timeout=60)
        make_wav(setup.inbox / "after.wav")
        daemon.wait_event("file.done", timeout=60)
        assert daemon.proc.poll() is None
    finally:
        daemon.kill()
    assert (setup.inbox / "after.txt").read_text() == "transcript of after.wav\n"
    return list(daemon.named("config.reload_failed")[0]["problems"])


@pytest.mark.parametrize("case", [*RELOADED, *FIFO_CASES])
def test_sighup_with_an_unusable_config_keeps_the_daemon_running(setup, case):
    """A running daemon sent SIGHUP with an unusable value (or its prompt_file or config
    file replaced by a FIFO nobody writes to) logs config.reload_failed naming the key, stays up, and
    transcribes a file dropped afterwards with the config it had."""
    prompt = setup.root / "prompt.txt"
    prompt.write_text("Names: Ana, Bo.\n")
    setup.data["defaults"]["prompt_file"] = str(prompt)

    def spoil() -> None:
        if case in BAD:
            write_bad(setup, case)
        else:
            (setup.root / FIFO_CASES[case][0]).unlink()
            os.mkfifo(setup.root / FIFO_CASES[case][0])

    problems = refused_at_reload(setup, spoil)
    if case in BAD:
        assert refused(problems, setup, case), problems
    else:
        words = FIFO_CASES[case][1]
        assert any(words in p and p.endswith("is a FIFO, not a regular file") for p in problems)
    assert setup.api.uploads[-1].fields["prompt"] == "Names: Ana, Bo."
