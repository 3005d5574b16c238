"""Links planted in an inbox, against the real ``dropscribe`` process: ``retry`` and
quarantine never move files through them or make folders where they point, and a
known voice's clip is read only if it is a regular file of a clip's size."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from pathlib import Path

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, tmpfs, write_tones
from fakeapi import FakeAPI, Reply, tone_answer
from test_attacks import run_command

pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry below ``folder`` (not following links): its kind, mode and content hash."""
    found: dict[str, tuple[str, int, str]] = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(top) / name
            st = path.lstat()
            if path.is_symlink():
                found[str(path)] = ("link", st.st_mode, os.readlink(path))
            elif path.is_dir():
                found[str(path)] = ("dir", st.st_mode, "")
            else:
                found[str(path)] = (
                    "file",
                    st.st_mode,
                    hashlib.sha256(path.read_bytes()).hexdigest(),
                )
    return found


NO_OPENAT2 = """
from dropscribe import beneath

def unavailable(*args):
    raise beneath.Unavailable

beneath._openat2 = unavailable
"""


@pytest.fixture(params=["openat2", "walk"])
def way(request, setup, monkeypatch) -> str:
    """Each attack runs twice: with openat2, and with the per-component walk that stands
    in where the kernel lacks it (openat2 made unavailable in the daemon's interpreter,
    by a sitecustomize module the commands and the daemon load)."""
    if request.param == "walk":
        folder = setup.root / "inject"
        folder.mkdir(exist_ok=True)
        (folder / "sitecustomize.py").write_text(NO_OPENAT2)
        paths = [str(folder), os.environ.get("PYTHONPATH", "")]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    return str(request.param)


def full_folder(setup) -> Path:
    """A folder outside the inbox holding files anyone would miss, and one of ours."""
    outside = setup.root / "outside"
    (outside / "keys").mkdir(parents=True)
    (outside / "config.ini").write_text("[secret]\nvalue = 1\n")
    (outside / "keys" / "id_rsa").write_text("-----BEGIN KEY-----\n")
    make_wav(outside / "x.wav")
    (outside / "x.wav.error.json").write_text('{"reason": "planted"}')
    return outside


def test_retry_moves_nothing_out_of_a_failed_dir_that_is_a_link(setup, way):
    """failed/ is a link to a folder full of files: retry --all moves none of them into
    the inbox, makes nothing, says why on stderr and exits 1."""
    outside = full_folder(setup)
    (setup.inbox / "failed").symlink_to(outside)
    before, inbox_before = snapshot(outside), snapshot(setup.inbox)
    done = run_command(setup, "retry", "--all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{setup.inbox / 'failed'}: left alone: a symbolic link" in done.stderr
    assert "queued again" not in done.stdout
    assert snapshot(outside) == before
    assert snapshot(setup.inbox) == inbox_before


def test_retry_never_enters_a_link_planted_inside_the_failed_dir(setup, way):
    """failed/sub is a link to a folder full of files: none is moved, it is named on
    stderr (exit 1); a real quarantined recording beside it still goes back."""
    outside = full_folder(setup)
    make_wav(setup.inbox / "failed" / "a.wav")
    (setup.inbox / "failed" / "sub").symlink_to(outside)
    before = snapshot(outside)
    done = run_command(setup, "retry", "--all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{setup.inbox / 'failed' / 'sub'}: left alone: a symbolic link" in done.stderr
    assert done.stdout.count("queued again") == 1
    assert (setup.inbox / "a.wav").is_file()
    assert snapshot(outside) == before
    assert not (setup.inbox / "x.wav").exists()
    assert not (setup.inbox / "sub").exists()


def test_retry_makes_no_folder_through_a_link_where_a_recording_goes_back(setup, way):
    """inbox/sub is a link out of the inbox and failed/sub/deep/x.wav waits to go back
    there: retry refuses (exit 1, stderr says why), makes no folder outside, and leaves
    the recording in failed/."""
    outside = full_folder(setup)
    quarantined = make_wav(setup.inbox / "failed" / "sub" / "deep" / "x.wav")
    (setup.inbox / "sub").symlink_to(outside)
    before = snapshot(outside)
    done = run_command(setup, "retry", "--all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{quarantined}: cannot move back:" in done.stderr
    assert "is a symbolic link" in done.stderr
    assert snapshot(outside) == before
    assert quarantined.is_file()


def test_quarantine_makes_no_folder_where_a_planted_failed_link_points(setup, way):
    """failed/ is a link out of the inbox and a bad recording sits in a subfolder: the
    quarantine is refused with why, and no folder is made where the link points."""
    outside = full_folder(setup)
    (setup.inbox / "failed").symlink_to(outside)
    setup.api.script.append(Reply(400, {"error": {"message": "Invalid file format."}}))
    make_wav(setup.inbox / "sub" / "deeper" / "b.wav")
    before = snapshot(outside)
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 1
    (skipped,) = daemon.named("file.quarantine_skipped")
    assert "is a symbolic link" in skipped["reason"]
    assert snapshot(outside) == before
    assert (setup.inbox / "sub" / "deeper" / "b.wav").is_file()


@pytest.fixture
def diarizing(setup):
    """The setup on a server that labels speakers and checks known voices as OpenAI does."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        setup.api = api
        setup.data["endpoints"]["local"] = {
            "kind": "openai",
            "base_url": api.base_url,
            "api_key_env": "DROPSCRIBE_TEST_KEY",
            "max_attempts": 1,
        }
        voices = setup.root / "voices"
        write_tones(voices / "Ana.wav", [(0.0, 3.0, 440)], 3.0)
        setup.data["defaults"].update(
            {"model": "gpt-4o-transcribe-diarize", "speakers": True, "voices": str(voices)}
        )
        yield setup


def planted_then_job(setup, plant) -> DaemonProcess:
    """The real daemon, running; ``plant()`` acts on the voices folder, then a recording
    is dropped; returns once the recording's job has ended."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        plant()
        write_tones(setup.inbox / "call.wav", [(1.0, 3.0, 440)], 4.0)
        daemon.wait_output(
            lambda: daemon.named("file.failed") or daemon.named("file.done"), 60, "the job's end"
        )
    finally:
        daemon.kill()
    return daemon


def test_a_link_in_the_voices_folder_is_never_read_or_uploaded(diarizing, way):
    """voices/Eve.wav links to a 0600 clip outside every inbox: no request carries a byte
    of it, and the job fails saying the clip is a link."""
    setup = diarizing
    secret = write_tones(setup.root / "private" / "secret.wav", [(0.0, 3.0, 660)], 3.0)
    secret.chmod(0o600)
    link = setup.root / "voices" / "Eve.wav"
    daemon = planted_then_job(setup, lambda: link.symlink_to(secret))
    carried = base64.b64encode(secret.read_bytes()).decode()
    sent = [r for u in setup.api.uploads for r in u.multi.get("known_speaker_references[]", [])]
    assert not [r for r in sent if carried in r]
    (failed,) = daemon.named("file.failed")
    assert failed["error"] == (
        f"voice clip {link} is a symbolic link; links in a voices folder are never"
        " followed: put the clip itself there"
    )


def wav_with_trailing_chunk(path: Path, extra: int) -> Path:
    """A 5 s clip whose RIFF holds one more chunk of ``extra`` bytes after its audio
    (a hole: the disk stays light)."""
    write_tones(path, [(0.0, 5.0, 660)], 5.0)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.seek(4)
        fh.write(struct.pack("<I", size - 8 + 8 + extra))
        fh.seek(size)
        fh.write(b"JUNK" + struct.pack("<I", extra))
    os.truncate(path, size + 8 + extra)
    return path


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_voice_clip_with_a_huge_trailing_chunk_is_refused_before_it_is_read(diarizing):
    """voices/Big.wav says 5 s in its header, then carries a 120 MB chunk: it is refused
    by size before a byte is read (no request carries it, peak memory stays flat), and
    the job says why."""
    setup = diarizing
    big = setup.root / "voices" / "Big.wav"
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        peak_before = peak_rss_kib(daemon.proc.pid)
        wav_with_trailing_chunk(big, 120_000_000)
        write_tones(setup.inbox / "call.wav", [(1.0, 3.0, 440)], 4.0)
        daemon.wait_output(
            lambda: daemon.named("file.failed") or daemon.named("file.done"), 120, "the job's end"
        )
        grown = peak_rss_kib(daemon.proc.pid) - peak_before
    finally:
        daemon.kill()
    assert grown < 40 * 1024, f"peak RSS grew by {grown} KiB"
    assert all(
        sum(map(len, u.multi.get("known_speaker_references[]", []))) < 8 << 20
        for u in setup.api.uploads
    )
    (failed,) = daemon.named("file.failed")
    assert failed["error"].startswith(f"voice clip {big} is larger than 4194304 bytes")


def test_sidecars_are_never_written_through_a_link_below_output_dir(setup, way):
    """output_dir/sub is a link to a folder elsewhere: the sidecar of inbox/sub/a.wav is
    not written there (sidecar.failed names the link), and nothing is made outside."""
    outside = full_folder(setup)
    out = setup.root / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside)
    setup.data["defaults"]["output_dir"] = str(out)
    make_wav(setup.inbox / "sub" / "a.wav")
    before = snapshot(outside)
    daemon = DaemonProcess(setup, command="once")
    assert daemon.wait() == 1
    (failed,) = daemon.named("sidecar.failed")
    assert "a symbolic link on the way; not followed" in failed["error"]
    assert snapshot(outside) == before


@pytest.fixture
def other_disk(tmp_path):
    """A small disk of our own: another filesystem than the inbox's."""
    with tmpfs(tmp_path / "other", "size=8m") as mount:
        yield mount


def test_a_failed_dir_on_another_filesystem_takes_and_gives_back_the_recording(setup, other_disk):
    """failed_dir on another filesystem: the failed recording is copied there through
    descriptors (rename cannot cross), its report beside it, and retry brings it back."""
    setup.data["inboxes"][0]["failed_dir"] = str(other_disk / "failed")
    setup.api.script.append(Reply(400, {"error": {"message": "Invalid file format."}}))
    data = make_wav(setup.inbox / "sub" / "a.wav").read_bytes()
    assert DaemonProcess(setup, command="once").wait() == 1
    quarantined = other_disk / "failed" / "sub" / "a.wav"
    assert quarantined.read_bytes() == data
    assert (other_disk / "failed" / "sub" / "a.wav.error.json").is_file()
    assert not (setup.inbox / "sub" / "a.wav").exists()
    done = run_command(setup, "retry", "--all")
    assert done.returncode == 0, done.stderr
    assert (setup.inbox / "sub" / "a.wav").read_bytes() == data
    assert not quarantined.exists()
