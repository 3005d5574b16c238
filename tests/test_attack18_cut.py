"""attack18: audio/cut.py against crafted and unlucky files: a FLAC whose frames stop
before hundreds of MB of zeros (a recorder that preallocated its file and lost power),
a Matroska header before 2 GB of them, an Ogg of 10,000 tiny pages with a stray byte
after. No crash, no worker pinned, the right audio.short or none."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from conftest import DaemonProcess, write_tones

if TYPE_CHECKING:
    from pathlib import Path

TONES = [(3.0 * n, 3.0 * n + 2.0, 300 + 100 * n) for n in range(10)]  # one every 3 s
MiB = 1024 * 1024


def flac_claiming(path: Path, samples: int, size: int) -> Path:
    """A 30-s 16-kHz FLAC whose STREAMINFO claims ``samples``, grown to ``size`` bytes
    with zeros (sparse: ``truncate`` leaves a hole, no disk is used)."""
    write_tones(path, TONES, 30.0, container="flac", codec="flac")
    data = bytearray(path.read_bytes())
    packed = int.from_bytes(data[18:26], "big")  # STREAMINFO's total samples: 36 bits
    packed = (packed & ~((1 << 36) - 1)) | samples
    data[18:26] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))
    os.truncate(path, size)
    return path


def test_a_flac_before_600_mb_of_zeros_does_not_abort_the_daemon(setup):
    """A FLAC claiming 10 h whose 30 s of frames stop before 600 MB of zeros: the daemon
    says audio.short (36000 s declared, 30 s held) and writes what was heard; FFmpeg's
    parser no longer buffers the zeros past 512 MiB and aborts the process (SIGABRT)."""
    flac_claiming(setup.inbox / "preallocated.flac", 16000 * 36000, 600 * MiB)
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait(120) == 0, daemon
    (short,) = daemon.named("audio.short")
    assert (short["declared_seconds"], short["decoded_seconds"]) == (36000.0, 30.0)
    assert len(daemon.named("file.done")) == 1
    assert (setup.inbox / "preallocated.txt").read_text().strip()


def bytes_read() -> int:
    """What this process has read so far, holes of sparse files included (/proc/self/io)."""
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


def test_a_matroska_header_before_a_gigabyte_of_zeros_is_read_16_mb_past_its_packets(
    tmp_path,
):
    """A 30-s Matroska claiming an hour, then 1 GiB of zeros: said short (3600 s declared,
    30 s held) after reading at most 64 MiB, not the gigabyte (22 s of CPU for 2 GiB)."""
    from dropscribe.audio import cut, probe

    path = write_tones(
        tmp_path / "a.mka", TONES, 30.0, rate=48000, container="matroska", codec="libopus"
    )
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # the Segment's Duration, an 8-byte float
    data[at + 3 : at + 11] = struct.pack(">d", 3600e3)  # in milliseconds
    path.write_bytes(bytes(data))
    os.truncate(path, 1024 * MiB)
    found = probe.examine(path)
    before = bytes_read()
    short = cut.short(path, found)
    assert bytes_read() - before < 64 * MiB
    assert short is not None
    assert (short.declared, round(short.held)) == (3600.0, 30)


def ogg_pages(count: int) -> bytes:
    """``count`` Ogg pages of one one-byte packet each (28 bytes a page; CRCs left 0)."""
    return b"".join(
        b"OggS\0\0" + struct.pack("<qIII", 48 * n, 1, n, 0) + b"\x01\x01x" for n in range(count)
    )


def test_ten_thousand_tiny_ogg_pages_and_a_stray_byte_are_walked_once(tmp_path, monkeypatch):
    """The last 130 kB of an Ogg, 4,700 tiny pages and a stray byte after them: no page
    is followed twice (each start was followed to the stray byte again: 5 s of CPU);
    the stray byte is not a cut page, and a last page cut in two is one."""
    from dropscribe.audio import cut

    walks = []
    follow = cut._pages_end
    monkeypatch.setattr(cut, "_pages_end", lambda *args: walks.append(1) or follow(*args))
    stray = tmp_path / "stray.ogg"
    stray.write_bytes(ogg_pages(10_000) + b"\x01")
    assert not cut.ogg_cut(stray)
    assert len(walks) < 10
    torn = tmp_path / "torn.ogg"
    torn.write_bytes(ogg_pages(10_000)[:-10])
    assert cut.ogg_cut(torn)
