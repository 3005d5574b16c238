"""Config mistakes said once, in plain words, with the fix: a typo names the key it is
closest to and causes no other error, a mapping where a list belongs says so, a folder in
the kernel's trees is refused, and a busy state_dir names its process and the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import yaml

from conftest import API_KEY, DaemonProcess

if TYPE_CHECKING:
    from pathlib import Path


def dropscribe(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a person runs it."""
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "DROPSCRIBE_TEST_KEY": API_KEY},
        timeout=120,
        check=False,
    )


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()


def test_a_typo_in_defaults_says_did_you_mean_and_nothing_else(setup):
    """fromats: in defaults is one problem, with the key it is a typo of; no false
    'no endpoint' or 'no model' follows it."""
    setup.data["defaults"]["fromats"] = ["txt"]
    lines = problems(dropscribe(setup.write(), "check-config"))
    assert len(lines) == 1, lines
    assert "defaults.fromats: unknown key; did you mean `formats`?" in lines[0]


def test_a_typo_in_an_endpoint_and_an_inbox_names_the_key_meant(setup):
    """Unknown keys anywhere name the closest known key of that very mapping."""
    setup.data["endpoints"]["local"]["max_attempt"] = 3
    setup.data["inboxes"][0]["recursiv"] = True
    lines = problems(dropscribe(setup.write(), "check-config"))
    assert any(
        "endpoints.local.max_attempt: unknown key; did you mean `max_attempts`?" in line
        for line in lines
    ), lines
    assert any(
        "inboxes[0].recursiv: unknown key; did you mean `recursive`?" in line for line in lines
    ), lines
    assert len(lines) == 2, lines


def test_inboxes_written_without_a_dash_says_so(setup):
    """inboxes: as a mapping (no '-') says a list is wanted and how, not pydantic's words."""
    setup.data["inboxes"] = {"path": str(setup.inbox)}
    lines = problems(dropscribe(setup.write(), "check-config"))
    assert len(lines) == 1, lines
    assert "inboxes: is a mapping, but should be a list: start each item with '- '" in lines[0]
    assert "tuple" not in lines[0]


def test_an_output_dir_under_proc_sys_or_dev_is_refused(setup):
    """output_dir under /proc, /sys or /dev is a problem of check-config."""
    for place in ("/proc/sys", "/sys/kernel", "/dev/null"):
        setup.data["inboxes"][0]["output_dir"] = place
        lines = problems(dropscribe(setup.write(), "check-config"))
        assert len(lines) == 1, lines
        assert "inboxes[0].output_dir:" in lines[0]
        assert "choose a folder on a disk" in lines[0]


def test_a_busy_state_dir_names_the_other_process_and_the_setting(setup, tmp_path):
    """A second dropscribe on a state_dir in use names the running one's pid and says to
    set state_dir: in its own config."""
    running = DaemonProcess(setup)
    try:
        running.wait_event("daemon.started")
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump(setup.data))
        result = dropscribe(other, "once")
        assert result.returncode == 2
        assert f"pid {running.proc.pid}" in result.stderr
        assert f"state_dir: in {other}" in result.stderr
    finally:
        running.signal(15)
        assert running.wait() == 0
