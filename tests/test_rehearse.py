"""dropscribe rehearse: a new model tried on finished recordings, through the real process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import API_KEY, DaemonProcess, make_wav
from fakeapi import FakeAPI

pytestmark = pytest.mark.slow


def rehearse(setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "rehearse", "-c", str(setup.config_path), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, **setup.env},
        timeout=120,
    )


def finished(setup, api: FakeAPI, count: int) -> None:
    """``count`` recordings transcribed with whisper-1 on an openai endpoint."""
    setup.data["endpoints"]["local"].update(kind="openai", base_url=api.base_url)
    setup.data["defaults"].update(model="whisper-1", formats=["txt", "srt"])
    for n in range(count):
        make_wav(setup.inbox / f"r{n}.wav", freq=300 + 100 * n)
    assert DaemonProcess(setup, command="once").wait(timeout=60) == 0


def test_rehearse_writes_next_sidecars_and_a_table_without_touching_anything(setup):
    """Two finished recordings tried on gpt-transcribe: NAME.next.txt and .next.srt beside
    the untouched sidecars, a table with the word difference and both prices, no request
    refused, and nothing in the ledger changed (a later once uploads nothing)."""
    with FakeAPI(api_key=API_KEY) as api:
        finished(setup, api, 2)
        before = {p.name: p.read_bytes() for p in setup.inbox.iterdir()}
        shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", "gpt-transcribe")
        assert shown.returncode == 0, shown.stderr
        again = DaemonProcess(setup, command="once")
        assert again.wait(timeout=60) == 0
    tried = [u for u in api.uploads if u.fields.get("model") == "gpt-transcribe"]
    assert [u.reply for u in tried] == ["200", "200"]
    assert len(api.uploads) == 4  # two at first, two rehearsed, none after
    for name, data in before.items():
        assert (setup.inbox / name).read_bytes() == data
    assert (setup.inbox / "r0.next.txt").read_text() == "transcript of r0.wav\n"
    assert (setup.inbox / "r1.next.srt").exists()
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["file", "seconds", "words", "differ", "refused"]
    assert any(line.startswith("total") for line in lines)
    assert "now: whisper-1 on local: $0.360 an audio hour" in shown.stdout
    assert "next: gpt-transcribe on local: $0.270 an audio hour" in shown.stdout


def test_rehearse_apply_sets_the_inboxs_model_keeping_comments_and_a_backup(setup):
    """--apply: the inbox's model: is set in the config file, every comment kept, the old
    file kept beside it; the new config loads and the daemon uses the new model."""
    with FakeAPI(api_key=API_KEY) as api:
        finished(setup, api, 1)
        text = setup.config_path.read_text()
        setup.config_path.write_text("# my notes\n" + text)
        original = setup.config_path.read_text()
        shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", "gpt-transcribe", "--apply")
        assert shown.returncode == 0, shown.stderr
        backups = list(setup.config_path.parent.glob("dropscribe.yaml.*.bak"))
        assert [b.read_text() for b in backups] == [original]
        changed = setup.config_path.read_text()
        assert changed.startswith("# my notes\n")
        assert yaml.safe_load(changed)["inboxes"][0]["model"] == "gpt-transcribe"
        make_wav(setup.inbox / "new.wav", freq=900)
        # the config as it is now on disk (DaemonProcess would write setup.data over it)
        daemon_proc = subprocess.run(
            [sys.executable, "-m", "dropscribe", "once", "-c", str(setup.config_path)],
            env={**__import__("os").environ, **setup.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert daemon_proc.returncode == 0, daemon_proc.stderr
    after = api.uploads[2:]  # one at first, one rehearsed; then new.wav (in spans: srt)
    assert after
    assert all(u.fields["model"] == "gpt-transcribe" and u.reply == "200" for u in after)
    assert (setup.inbox / "new.srt").exists()


def test_rehearse_reads_only_the_very_files_it_finished(setup, tmp_path):
    """Finished recordings swapped for a link to a private file outside, a FIFO nobody
    writes and a huge sparse file: rehearse sends none of them (no secret bytes go out,
    nothing blocks), says why for each, and exits 1."""
    import hashlib
    import os

    with FakeAPI(api_key=API_KEY) as api:
        finished(setup, api, 3)
        secret = tmp_path / "secret.wav"
        secret.write_bytes(b"RIFF-private-" * 1000)
        secret.chmod(0o600)
        (setup.inbox / "r0.wav").unlink()
        (setup.inbox / "r0.wav").symlink_to(secret)
        (setup.inbox / "r1.wav").unlink()
        os.mkfifo(setup.inbox / "r1.wav")
        with (setup.inbox / "r2.wav").open("r+b") as fh:
            fh.truncate(2**31)
        shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", "gpt-transcribe")
    assert shown.returncode == 1, shown.stdout
    assert len(api.uploads) == 3  # the first three transcriptions, nothing rehearsed
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in {u.sha256 for u in api.uploads}
    failed = [line for line in shown.stdout.splitlines() if "failed:" in line]
    assert len(failed) == 3, shown.stdout
    assert not list(setup.inbox.glob("*.next.*"))


def _capped(limit: int):
    """A child's preexec: files it writes stop at ``limit`` bytes (EFBIG past it)."""
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_rehearse_apply_that_cannot_write_leaves_the_config_whole(setup):
    """--apply whose new config cannot be written (the file size limit stops it half-way,
    as a full disk would): the config keeps every byte, no temporary file is left, the
    error names the config and the cause, exit 1; through a link the config stays a link."""
    import os

    with FakeAPI(api_key=API_KEY) as api:
        finished(setup, api, 1)
        real = setup.config_path.with_name("real.yaml")
        # a config larger than the ledger and its files, so only the config meets the cap
        real.write_text(setup.config_path.read_text() + "# notes\n" * 100_000)
        real.chmod(0o640)
        setup.config_path.unlink()
        setup.config_path.symlink_to(real.name)
        original = real.read_bytes()
        new = ["--inbox", str(setup.inbox), "--model", "gpt-transcribe", "--apply"]
        shown = subprocess.run(
            [sys.executable, "-m", "dropscribe", "rehearse", "-c", str(setup.config_path), *new],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **setup.env},
            timeout=120,
            preexec_fn=_capped(len(original) + 5),
        )
        assert shown.returncode == 2, shown.stderr
        assert "Traceback" not in shown.stderr
        assert f"{setup.config_path}: left as it was: cannot write it anew: File too large" in (
            shown.stderr
        )
        assert real.read_bytes() == original
        assert setup.config_path.is_symlink()
        assert not list(real.parent.glob(".real.yaml.*"))
        done = rehearse(setup, *new)
        assert done.returncode == 0, done.stderr
    assert setup.config_path.is_symlink()
    assert yaml.safe_load(real.read_text())["inboxes"][0]["model"] == "gpt-transcribe"
    assert oct(real.stat().st_mode & 0o777) == oct(0o640)
    backups = list(real.parent.glob("real.yaml.*.bak"))
    assert [(b.read_bytes(), b.stat().st_mode & 0o777) for b in backups][-1] == (original, 0o640)
