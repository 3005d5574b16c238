"""Sidecar files: written whole or not at all, whatever their names."""

from __future__ import annotations

import os

import pytest

from dropscribe.errors import SidecarError
from dropscribe.outputs import sidecar

# 123 Cyrillic letters and ".txt": 250 bytes, within the 255 a Linux filesystem allows
LONG = "я" * 123 + ".txt"


@pytest.fixture(params=["O_TMPFILE", "named temp file"])
def how(request, monkeypatch):
    """Both ways a sidecar is staged: an unnamed file, or a hidden temp file where the
    filesystem has no O_TMPFILE."""
    if request.param == "named temp file":
        monkeypatch.delattr(os, "O_TMPFILE")
    return request.param


def test_a_long_name_that_fits_is_written_and_replaced(tmp_path, how):
    """A sidecar whose name is near the filesystem's limit is written, and replaced when
    its recording is transcribed again: the temporary names stay short enough."""
    target = tmp_path / LONG
    assert len(os.fsencode(target.name)) == 250
    sidecar.write_all({target: b"first\n"})
    first = target.stat().st_ino
    sidecar.write_all({target: b"second\n"})
    assert target.read_bytes() == b"second\n"
    if how == "O_TMPFILE":
        assert target.stat().st_ino != first  # a new file put in place, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [LONG]


def test_a_failed_set_leaves_no_temporary_file(tmp_path, how):
    """When one sidecar of a set cannot be written (its folder is a file), the error says
    so, and no temporary file is left behind by the others."""
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(SidecarError) as info:
        sidecar.write_all({tmp_path / "a.txt": b"x", tmp_path / "blocked" / "a.srt": b"y"})
    assert "blocked" in str(info.value.filename)
    leftovers = [p.name for p in tmp_path.iterdir() if sidecar.is_temp(p)]
    assert leftovers == []
    assert not (tmp_path / "a.txt").exists()
