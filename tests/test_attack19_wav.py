"""attack19: a WAV's chunks walked over runs of zeros (eight bytes a step, each an empty
chunk): a recording followed by 256 MiB of zeros (copied onto a preallocated file; a
sparse ``truncate``, no disk) kept FFmpeg stepping for 47 s in each job and each
``explain``; 32 MiB of zeros before the audio kept ``wave`` stepping for 3 s. FFmpeg now
reads such a WAV to 1 MiB past its audio, and the chunks before it are counted."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import DaemonProcess, write_tones
from test_attack18_cut import MiB, bytes_read

FMT_END = 12 + 8 + 16  # RIFF, WAVE, then the fmt chunk of a PCM WAV


def test_a_wav_followed_by_256_mib_of_zeros_is_read_to_just_past_its_audio(setup):
    """Its tracks are read, and it is decoded, reading under 8 MiB, not the 256 MiB of
    zeros; the daemon transcribes it and says nothing is cut short."""
    from dropscribe.audio import probe, transcode

    path = write_tones(setup.root / "pre.wav", [(0.0, 2.0, 440)], 12.0)
    os.truncate(path, path.stat().st_size + 256 * MiB)
    before = bytes_read()
    (track,) = probe.tracks(path)
    assert track.codec == "pcm_s16le"
    decoded = transcode.decode(path, setup.root / "pcm")
    assert bytes_read() - before < 8 * MiB
    assert decoded.seconds == 12.0
    shutil.move(path, setup.inbox / "pre.wav")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait(120) == 0, daemon
    assert len(daemon.named("file.done")) == 1
    assert not daemon.named("audio.short")


def test_a_wav_with_32_mib_of_zeros_before_its_audio_fails_with_a_reason(setup):
    """32 MiB of zeros between its fmt chunk and its audio: file.failed saying so, after
    reading under 1 MiB; nothing uploaded."""
    from dropscribe.audio import probe
    from dropscribe.errors import PermanentError

    whole = write_tones(setup.root / "whole.wav", [(0.0, 2.0, 440)], 3.0).read_bytes()
    path = setup.root / "padded.wav"
    with path.open("wb") as out:
        out.write(whole[:FMT_END])
        out.seek(FMT_END + 32 * MiB)
        out.write(whole[FMT_END:])
    before = bytes_read()
    with pytest.raises(PermanentError, match="no audio within its first 1,000 chunks"):
        probe.examine(path)
    assert bytes_read() - before < MiB
    shutil.move(path, setup.inbox / "padded.wav")
    daemon = DaemonProcess(setup, "once")
    daemon.wait(120)
    (failed,) = daemon.named("file.failed")
    assert "not a WAV a recorder writes" in failed["error"]
    assert not setup.api.uploads
