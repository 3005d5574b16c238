"""attack19: audio/cut.py against a Matroska whose Tags element's ID is overwritten (a
byte flip in a fuzzed file), grown with zeros: FFmpeg read the whole file while it
opened it, where ``Bounded`` set no bound, in each of the check's two opens (2 GiB read,
30 s of CPU for a 2 GiB file). Now the opening may read ``HEADER_BYTES``."""

from __future__ import annotations

import os

from conftest import write_tones
from test_attack18_cut import TONES, MiB, bytes_read


def test_a_matroska_with_a_broken_element_is_opened_reading_64_mib_not_the_file(tmp_path):
    """The Tags ID overwritten with a NaN's bytes, then 512 MiB of zeros: the cut check
    reads under 200 MiB (two opens of at most 64 MiB, and 16 MiB past each packet),
    not the file twice; it says what it says without raising."""
    from dropscribe.audio import cut, probe

    path = write_tones(
        tmp_path / "a.mka", TONES, 30.0, rate=48000, container="matroska", codec="libopus"
    )
    data = bytearray(path.read_bytes())
    at = data.find(b"\x00\x12\x54\xc3\x67")  # the Tags element's ID, after a Void's zeros
    data[at : at + 8] = b"\xff\xf0" + bytes(6)  # with its size: a NaN's bytes
    path.write_bytes(bytes(data))
    os.truncate(path, 512 * MiB)
    found = probe.examine(path)
    assert found.declared is not None
    assert round(found.declared) == 30
    before = bytes_read()
    cut.short(path, found)
    assert bytes_read() - before < 200 * MiB
