"""attack13: files the config names for the steps and languages (issues 32, 33), each
unusable in its own way: ``summary.prompt_file`` (check-config says file:line and why,
never waits, never a traceback) and ``language_model:`` as a folder (the job ends with the
reason, no worker waits on a FIFO, memory stays bounded)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav

pytestmark = pytest.mark.slow

MiB = 1 << 20


def check_config(setup: Any, *, user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())]
    if user:
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        timeout=60,
        check=False,
    )


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


PROMPTS = {
    "a FIFO": (lambda root: fifo(root / "p.fifo"), "is a FIFO"),
    "/dev/zero": (lambda _root: Path("/dev/zero"), "is a device"),
    "2 GB": (lambda root: sparse(root / "big.txt", 2 << 30), "is over"),
    "a directory": (lambda root: (root / "d").mkdir() or root / "d", "Is a directory"),
    "not UTF-8": (
        lambda root: (root / "latin.txt").write_bytes(b"caf\xe9 \xff") and root / "latin.txt",
        "cannot read",
    ),
    "a link loop": (
        lambda root: (root / "loop").symlink_to(root / "loop") or root / "loop",
        "cannot read",
    ),
}


@pytest.mark.parametrize("case", list(PROMPTS))
def test_an_unusable_summary_prompt_file_is_a_config_problem_with_file_and_line(setup, case):
    """summary.prompt_file naming a FIFO, /dev/zero, a 2 GB file, a folder, bytes that are
    not UTF-8 or a link loop: check-config exits 2 naming file:line, the key and why."""
    make, words = PROMPTS[case]
    setup.data["endpoints"]["llm"] = {"kind": "chat", "base_url": "http://127.0.0.1:9/v1"}
    setup.data["defaults"]["chat"] = {"endpoint": "llm", "model": "m"}
    setup.data["defaults"]["summary"] = {"prompt_file": str(make(setup.root))}
    done = check_config(setup)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    shape = re.compile(
        rf"{re.escape(str(setup.config_path))}:\d+: defaults\.summary\.prompt_file: .*"
        + re.escape(words)
    )
    assert any(shape.search(line) for line in done.stderr.splitlines()), done.stderr


# ------------------------------------------------------------ language_model: a folder


def vocabulary(folder: Path, size: int = 51865) -> None:
    (folder / "vocabulary.json").write_text(json.dumps([f"t{n}" for n in range(size)]))


def loop(root: Path) -> Path:
    (root / "model").symlink_to(root / "model")
    return root / "model"


def fifo_vocabulary(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    fifo(folder / "vocabulary.json")
    return folder


def fifo_weights(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    vocabulary(folder)
    (folder / "config.json").write_text("{}")
    (folder / "tokenizer.json").write_text("{}")
    fifo(folder / "model.bin")
    return folder


def huge_vocabulary(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    sparse(folder / "vocabulary.txt", 400 * MiB)
    return folder


def empty(root: Path) -> Path:
    folder = root / "model"
    folder.mkdir()
    return folder


def plausible(root: Path) -> Path:
    """A folder check-config takes for a multilingual model (its weights are not read)."""
    folder = root / "model"
    folder.mkdir()
    vocabulary(folder)
    (folder / "config.json").write_text("{}")
    (folder / "model.bin").write_bytes(b"\0" * 1024)
    return folder


MODELS = {
    "a link loop": loop,
    "a FIFO for vocabulary.json": fifo_vocabulary,
    "a FIFO for model.bin": fifo_weights,
    "a 400 MB vocabulary": huge_vocabulary,
    "a folder without a model": empty,
}
ENDS = ("file.done", "file.failed", "job.crashed", "endpoint.paused", "language.undetected")


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("case", list(MODELS))
def test_an_unusable_language_model_folder_ends_the_job_with_a_reason(setup, case):
    """language_model: a link loop, a folder whose vocabulary.json or model.bin is a FIFO,
    a 400 MB vocabulary, a folder without a model, put in place of a model folder that
    passed check-config once the daemon runs (check-config refuses them up front): the
    recording's job reaches an end (or a pause naming the model) within seconds, no worker
    waits, memory stays bounded, and SIGTERM stops the daemon. The file fails naming the
    model, not quarantined (job.crashed would count attempts against the recording for
    the config's fault)."""
    model = plausible(setup.root)
    setup.data["inboxes"][0] |= {"language": ["en", "de"], "language_model": str(model)}
    setup.data["shutdown_grace"] = 3
    daemon = DaemonProcess(setup, env={"HF_HUB_OFFLINE": "1"})
    try:
        daemon.wait_event("daemon.started")
        shutil.rmtree(model)
        assert MODELS[case](setup.root) == model
        make_wav(setup.inbox / "a.wav")
        daemon.wait_output(lambda: any(daemon.named(end) for end in ENDS), 30, f"one of {ENDS}")
        assert peak_rss(daemon.proc.pid) < 300 * MiB
        assert not daemon.named("job.crashed")  # a config's model is no bug of ours
        [failed] = daemon.named("file.failed")
        assert failed["error"].startswith("cannot detect the language: ")
        assert str(model) in failed["error"]
        assert failed["quarantined"] is False
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0
    assert not [
        e for e in daemon.events if e.get("event") == "<unparsed>" and "Traceback" in e["line"]
    ]


@pytest.mark.parametrize("case", list(MODELS))
def test_an_unusable_language_model_folder_is_a_config_problem(setup, case):
    """The same folders as language_model: check-config exits 2 naming file:line and the
    key, at once (a FIFO is never waited on) and without a traceback."""
    model = MODELS[case](setup.root)
    setup.data["inboxes"][0] |= {"language": ["en", "de"], "language_model": str(model)}
    done = check_config(setup)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    where = re.compile(rf"{re.escape(str(setup.config_path))}:\d+: inboxes\[0\]\.language_model: ")
    assert any(where.search(line) for line in done.stderr.splitlines()), done.stderr
