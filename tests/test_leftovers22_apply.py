"""leftovers22: ``rehearse --apply`` whose edited config did not load put the old file
back, and a put-back that failed (the disk full, the folder made read-only since the
edit) ended in a traceback, leaving a config that does not load and no word of the
backup. So did a ``model:`` whose value is on a line of its own (the edit looked for the
key on the value's line). Each is a line saying what the config holds now, and exit 2.

The edit fails for real: the model was rehearsed on another endpoint (``--endpoint``),
and the inbox's own endpoint is said to answer it only in srt, which the config check
refuses. No real way makes the folder change between the edit and the put-back, so the
check's call (``checked.load``) is wrapped, in-process, to make the folder read-only
(``chattr +i``: read-only for root too) or the disk "full" (RLIMIT_FSIZE, as a full disk
stops a write) just before it reads the file."""

from __future__ import annotations

import contextlib
import resource
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from conftest import API_KEY
from fakeapi import OPENAI_MODELS, FakeAPI
from test_rehearse import finished, rehearse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow

MODEL = "odd-model"


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Callable[[], None]]:
    """A function making ``folder`` immutable (no file made, renamed or removed in it,
    by root either); undone when the block ends. Skipped where chattr cannot."""
    probe = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if probe.returncode:
        pytest.skip(f"chattr +i is refused here: {probe.stderr.decode().strip()}")
    subprocess.run(["chattr", "-i", str(folder)], check=True)
    try:
        yield lambda: subprocess.run(["chattr", "+i", str(folder)], check=True)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


@contextlib.contextmanager
def disk_full(folder: Path) -> Iterator[Callable[[], None]]:
    """A function after which this process's writes stop at 64 bytes (EFBIG: Python
    ignores SIGXFSZ), as on a full disk; the limit is put back when the block ends."""
    del folder
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def two_endpoints(setup: Setup, api: FakeAPI) -> None:
    """``other`` beside ``local``, the same server; ``local`` said to answer MODEL only
    in srt (a config naming MODEL for an inbox on ``local`` does not load)."""
    setup.data["endpoints"]["other"] = dict(setup.data["endpoints"]["local"])
    setup.data["endpoints"]["local"]["models"] = {MODEL: {"formats": ["srt"]}}
    folder = setup.root / "etc"
    folder.mkdir()
    setup.config_path = folder / "dropscribe.yaml"
    finished(setup, api, 1)


@pytest.mark.parametrize("how", [read_only, disk_full], ids=["read-only", "disk-full"])
def test_a_put_back_that_fails_after_an_edit_that_does_not_load_is_a_clear_line(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: Any
) -> None:
    """--apply of a model rehearsed on another endpoint, the config's folder made
    read-only (or the disk full) before the check: exit 2, one line naming the config,
    why it would not load, why it could not be put back and the backup to copy over it
    (which holds the old bytes); no traceback, no temporary file left."""
    from dropscribe.commands import rehearse as command
    from dropscribe.loading import checked

    served = {**OPENAI_MODELS, MODEL: OPENAI_MODELS["gpt-transcribe"]}
    with FakeAPI(api_key=API_KEY, models=served) as api:
        setup.api = api
        setup.data["endpoints"]["local"]["base_url"] = api.base_url
        two_endpoints(setup, api)
        original = setup.config_path.read_bytes()
        cfg = setup.load()
        real_load = checked.load
        folder = setup.config_path.parent
        with how(folder) as changed:

            def load(*args: Any, **kwargs: Any) -> Any:
                changed()  # between the edit and the put-back
                return real_load(*args, **kwargs)

            monkeypatch.setattr(checked, "load", load)
            code = command.rehearse(cfg, setup.inbox, MODEL, "other", 5, apply=True)
        monkeypatch.undo()
    shown = capsys.readouterr()
    assert code == 2, shown
    (line,) = shown.err.splitlines()
    source = setup.config_path
    assert line.startswith(f"dropscribe: {source}: with model: {MODEL} it would not load ("), line
    assert "is said to answer only srt" in line
    why = "Operation not permitted" if how is read_only else "File too large"
    (backup,) = folder.glob("dropscribe.yaml.*.bak")
    assert line.endswith(
        f", and it could not be put back ({why}): it holds model: {MODEL} now;"
        f" copy {backup} over it before the daemon reloads"
    ), line
    assert backup.read_bytes() == original
    assert yaml.safe_load(source.read_text())["inboxes"][0]["model"] == MODEL
    assert sorted(p.name for p in folder.iterdir()) == ["dropscribe.yaml", backup.name]


def test_apply_to_a_model_value_on_a_line_of_its_own_is_a_clear_line(setup: Setup) -> None:
    """An inbox whose model: has its value on the next line: --apply says it cannot set
    it in place and to set it by hand, exit 2, no traceback; the config and its folder
    are as they were (no backup)."""
    with FakeAPI(api_key=API_KEY) as api:
        finished(setup, api, 1)
        text = setup.config_path.read_text()
        entry = f"- path: {setup.inbox}\n"
        assert entry in text
        setup.config_path.write_text(text.replace(entry, f"{entry}  model:\n    whisper-1\n"))
        before = setup.config_path.read_bytes()
        shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", "gpt-transcribe", "--apply")
    assert shown.returncode == 2, shown
    assert "Traceback" not in shown.stderr, shown.stderr
    assert shown.stderr.endswith(
        f"dropscribe: cannot find the inbox {setup.inbox} in {setup.config_path} with its"
        " model: (if any) on one line; set model: gpt-transcribe by hand\n"
    ), shown.stderr
    assert setup.config_path.read_bytes() == before
    assert not list(setup.root.glob("*.bak"))
