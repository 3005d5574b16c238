"""review14: faults found reviewing this session's changes, each through the real
dropscribe process: a ``language_model:`` folder whose JSON is nested past Python's
limit is a config problem at its key, not "a bug in dropscribe"; ``route: cheapest``
with a deadline routes a backlog of files whose length the container does not say."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conftest import DaemonProcess, make_wav, patience
from dropscribe.vocab.route import Backlog, Option, fits, ordered
from fakeapi import FakeAPI
from test_lang32b import _check_config

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

NESTED = "[" * 200_000 + "]" * 200_000  # under config/files.py's 1 MiB, past the recursion limit


def _model_folder(folder: Path, config: str, vocabulary: str) -> Path:
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"\0")
    (folder / "config.json").write_text(config)
    (folder / "vocabulary.json").write_text(vocabulary)
    return folder


def test_check_config_refuses_a_model_folder_whose_json_is_nested_past_the_limit(
    setup: Setup, tmp_path: Path
):
    """language_model: a folder whose config.json or vocabulary.json nests 200,000 deep
    is an error at its key, exit 2 (it was "cannot load config: RecursionError ... (a bug
    in dropscribe)", at no key)."""
    for name, config, vocabulary in (
        ("config", NESTED, "[]"),
        ("vocabulary", "{}", NESTED),
    ):
        folder = _model_folder(tmp_path / name, config, vocabulary)
        setup.data["inboxes"][0] |= {"language": ["en", "de"], "language_model": str(folder)}
        done = _check_config(setup)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "RecursionError" not in done.stderr
        lines = [line for line in done.stderr.splitlines() if "language_model" in line]
        assert any("not a faster-whisper model's" in line for line in lines), done.stderr


def test_a_deadline_routes_a_backlog_of_files_whose_length_is_not_known(setup: Setup):
    """route: cheapest, deadline: 1h, both endpoints measured (a file each, in order),
    then a backlog of recordings whose length rounds to 0 s (as one whose container does
    not say): each goes to the cheap endpoint and is transcribed (each file with another
    behind it crashed in ZeroDivisionError: vocab/route.py divided by its length)."""
    common = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 30, "backoff_max": 0.2}
    with FakeAPI() as dear, FakeAPI(delay=0.3) as cheap:
        setup.data["endpoints"] = {
            "dear": {"base_url": dear.base_url, "price_per_hour": 0.36, **common},
            "cheap": {"base_url": cheap.base_url, "price_per_hour": 0.04, **common},
        }
        setup.data["workers"] = 1
        for n, first in enumerate(("dear", "cheap")):  # in order: each measured once
            setup.data["defaults"].update(endpoint=first, model="whisper-1")
            make_wav(setup.inbox / f"measured{n}.wav", seconds=1.0, freq=200.0 + 50 * n)
            assert DaemonProcess(setup, command="once").wait(patience(120)) == 0
        assert (len(dear.uploads), len(cheap.uploads)) == (1, 1)
        setup.data["defaults"].update(endpoint=["dear", "cheap"], route="cheapest", deadline="1h")
        for n in range(3):  # 6 frames: 0.375 ms, 0.0 s to the millisecond
            make_wav(setup.inbox / f"f{n}.wav", seconds=6 / 16000, freq=300.0 + 700 * n)
        proc = DaemonProcess(setup, command="once")
        code = proc.wait(patience(120))
    assert proc.named("job.crashed") == []
    assert code == 0
    assert len(list(setup.inbox.glob("f*.txt"))) == 3
    assert len(cheap.uploads) == 4


def test_fits_takes_a_file_of_no_known_length_as_fitting():
    """vocab/route.py's fits: a file of 0 s (no length known) with files behind it and
    measured endpoints fits where its endpoint has room, and never divides by zero."""
    cheap, dear = Option("cheap", "m", 0.04, 0.5), Option("dear", "m", 0.36, 0.1)
    backlog = Backlog(files=5, left=100.0, workers=1)
    assert fits([cheap, dear], cheap, 0.0, backlog)
    assert not fits([cheap, dear], Option("cheap", "m", 0.04, 0.5, free=200.0), 0.0, backlog)
    assert ordered([dear, cheap], "cheapest", 0.0, backlog) == [("cheap", "m"), ("dear", "m")]
