"""attack19: a recording whose audio stream FFmpeg knows no codec for (a WAV with an
unknown format tag, 0x1234; a mutated Matroska's codec id): PyAV gives the stream no
codec context, and the probe's ``codec_context.bit_rate`` was an AttributeError, the
job crashed with a traceback. It is a failure with a reason, before any upload."""

from __future__ import annotations

import struct

from conftest import DaemonProcess, write_tones


def test_a_wav_of_an_unknown_codec_fails_with_a_reason_not_a_crash(setup):
    """A WAV whose format tag is 0x1234: file.failed saying no codec reads it, moved to
    failed/, no job.crashed, nothing uploaded; the daemon exits 0 as for any failure."""
    path = write_tones(setup.inbox / "odd.wav", [(0.0, 2.0, 440)], 3.0)
    data = bytearray(path.read_bytes())
    data[20:22] = struct.pack("<H", 0x1234)  # fmt's format tag: no codec has it
    path.write_bytes(bytes(data))
    daemon = DaemonProcess(setup, "once")
    daemon.wait(60)
    assert not daemon.named("job.crashed"), daemon
    (failed,) = daemon.named("file.failed")
    assert "no codec here reads its audio" in failed["error"], failed
    assert not setup.api.uploads
    assert (setup.inbox / "failed" / "odd.wav").exists()
    assert not any("Traceback" in line for line in daemon.raw)
