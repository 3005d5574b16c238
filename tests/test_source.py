"""Opening a dropped file once: links, FIFOs and swaps seen on the descriptor."""

from __future__ import annotations

import os

import pytest

from conftest import make_wav
from dropscribe.ingest import source


def test_a_symbolic_link_is_not_opened_unless_links_are_followed(tmp_path):
    """A link in the inbox is skipped as one; with follow_symlinks its target is read."""
    target = make_wav(tmp_path / "real.wav")
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    with pytest.raises(source.Unusable, match="symbolic link"), source.opened(link):
        pass
    with source.opened(link, follow_symlinks=True) as held:
        assert held.content.read_bytes() == target.read_bytes()


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO named like audio is refused at once (opening it would wait for a writer)."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(source.Unusable, match="not a regular file"), source.opened(fifo):
        pass


def test_the_content_read_is_the_opened_file_after_a_rename_over_it(tmp_path):
    """Renaming another file over the name changes neither what is read nor the
    fingerprint; ``changed()`` says the name now holds something else."""
    path = make_wav(tmp_path / "a.wav")
    before = path.read_bytes()
    other = make_wav(tmp_path / "b.wav", freq=300)
    with source.opened(path) as held:
        digest = held.fingerprint()
        os.replace(other, path)
        assert held.content.read_bytes() == before
        assert held.fingerprint() == digest
        assert held.changed() == "renamed or replaced while it was being transcribed"


def test_appending_to_the_opened_file_is_seen(tmp_path):
    """Content written after the open is reported as a change of the content itself."""
    path = make_wav(tmp_path / "a.wav")
    with source.opened(path) as held:
        assert held.changed() is None
        with path.open("ab") as fh:
            fh.write(b"\0" * 10)
        assert held.changed() == "written to while it was being transcribed"
