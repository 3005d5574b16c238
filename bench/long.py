"""A two-hour recording: dropscribe's re-encoded, parallel chunks against one whole upload.

    python bench/long.py [--hours 2] [--per-audio-second 0.03]

The recording is a CD-quality stereo WAV (44.1 kHz, 1.27 GB for two hours) of
speech-like bursts and pauses. The local server takes ``--per-audio-second``
seconds to answer per second of audio it is sent (0.03: about 33x real time,
roughly what hosted Whisper does), and has no size limit. The baseline is one
upload of the whole WAV with curl, as a client without splitting would do.
dropscribe runs `once` with an OpenAI-kind endpoint at its defaults (25 MiB
uploads, max_concurrency 4, chunk_seconds 600).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from common import curl_upload, once_config, recording, run_once  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402

RATE = 44100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--per-audio-second", type=float, default=0.03)
    args = parser.parse_args()
    with recording(args.hours * 3600, "long") as (work, inbox, wav):
        size = wav.stat().st_size
        print(f"recording: {args.hours:g} h, {size / 1e9:.2f} GB WAV")

        with FakeAPI(per_audio_second=args.per_audio_second) as api:
            config = once_config(
                work, {"base_url": api.base_url, "timeout": 3600}, inbox, model="whisper-1"
            )
            chunked, peak_mib = run_once(config)
            sent = sum(u.size for u in api.uploads)
            count = len(api.uploads)
            assert (inbox / "meeting.srt").exists()

        with FakeAPI(per_audio_second=args.per_audio_second) as api:
            whole = curl_upload(wav, api.base_url, "model=whisper-1")
            assert api.uploads[0].size == size
            audio = api.uploads[0].seconds

        print(
            f"server: {args.per_audio_second:g} s per audio second "
            f"({audio:.0f} s of audio -> {audio * args.per_audio_second:.0f} s in one request)"
        )
        print(f"one whole upload (curl):   {whole:7.1f} s, {size / 1e6:8.1f} MB sent")
        print(f"dropscribe ({count} chunks):  {chunked:7.1f} s, {sent / 1e6:8.1f} MB sent")
        print(
            f"speed-up {whole / chunked:.2f}x (target >= 3x); "
            f"{size / sent:.0f}x fewer bytes (target >= 10x); "
            f"peak RSS {peak_mib:.0f} MiB (target <= 150 MiB)"
        )


if __name__ == "__main__":
    main()
