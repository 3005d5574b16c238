"""The pure and in-process pieces of private sidecars and of marks: the permission bits,
the mark on each sidecar (attribute, or the hidden fallback file), and adoption."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from dropscribe.ledger.store import SqliteLedger
from dropscribe.outputs import marks, publish, sidecar
from dropscribe.transcript import Transcript
from dropscribe.vocab.config import Inbox, Layer
from dropscribe.vocab.settings import FolderSettings, Format
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from pathlib import Path

DIGEST = "d" * 64


def umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_a_sidecars_bits_are_the_recordings_never_wider_than_the_umask():
    """0600 stays 0600, an executable 0755 loses its execute bits, and the umask still
    takes what it takes; without a recording, everyone's bits less the umask."""
    allowed = 0o666 & ~umask()
    assert sidecar.permissions(stat.S_IFREG | 0o600) == 0o600 & allowed
    assert sidecar.permissions(stat.S_IFREG | 0o4755) == 0o644 & allowed
    assert sidecar.permissions(None) == allowed


def _job(tmp_path: Path) -> tuple[Inbox, FolderSettings, Path, JobKey]:
    inbox = Inbox(
        "in", tmp_path, recursive=True, include=("*.wav",), exclude=(), layers=(Layer({}),)
    )
    settings = FolderSettings(endpoint="e", model="whisper-1", formats=(Format.TXT, Format.JSON))
    return inbox, settings, tmp_path / "a.wav", JobKey(DIGEST, settings.shaping_hash())


@pytest.mark.parametrize("attributes", [True, False])
def test_our_sidecars_are_adopted_by_an_empty_ledger(tmp_path, monkeypatch, attributes):
    """Written with the mark (an attribute, or the hidden file where the filesystem keeps
    none), a set is adopted by a fresh ledger for the same job, and by no other job."""
    inbox, settings, source, key = _job(tmp_path)
    if not attributes:
        monkeypatch.setattr(marks, "supported", lambda _folder: False)
    first = SqliteLedger(tmp_path / "one" / "ledger.sqlite3")
    try:
        written = publish.write(first, inbox, source, settings, Transcript("hi"), key, DIGEST)
    finally:
        first.close()
    assert written == [tmp_path / "a.txt", tmp_path / "a.json"]
    hidden = sorted(p.name for p in tmp_path.iterdir() if marks.is_fallback(p))
    if attributes:
        assert hidden == []
        assert os.getxattr(tmp_path / "a.txt", marks.XATTR)
    else:
        assert hidden == [".a.json.dropscribe-mark", ".a.txt.dropscribe-mark"]
    fresh = SqliteLedger(tmp_path / "two" / "ledger.sqlite3")
    try:
        other = JobKey("e" * 64, key.shaping)
        assert publish.adopt(fresh, inbox, source, settings, other, (1, 2, 3), key) == []
        assert publish.adopt(fresh, inbox, source, settings, key, (1, 2, 3), key) == written
        assert fresh.owner_of(tmp_path / "a.txt") == str(source)
        row = fresh.file(source)
        assert row is not None
        assert row.key == key
    finally:
        fresh.close()


def test_a_sidecar_edited_or_linked_is_not_ours(tmp_path):
    """A mark holds for the bytes it was written with, and never through a link."""
    inbox, settings, source, key = _job(tmp_path)
    ledger = SqliteLedger(tmp_path / "state" / "ledger.sqlite3")
    try:
        publish.write(ledger, inbox, source, settings, Transcript("hi"), key, DIGEST)
    finally:
        ledger.close()
    txt = tmp_path / "a.txt"
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert marks.carries(folder, "a.txt", key)
        (tmp_path / "link.txt").symlink_to(txt)
        assert not marks.carries(folder, "link.txt", key)
        with txt.open("a") as fh:
            fh.write("edited\n")
        assert not marks.carries(folder, "a.txt", key)
    finally:
        os.close(folder)
