"""A model without timestamps asked for subtitles: short parallel spans against one upload.

    python bench/spans.py [--minutes 30] [--per-audio-second 0.03]

The recording is the long-recording benchmark's speech-like CD-quality stereo WAV
(``common.meeting``). The local server is strict about gpt-4o-mini-transcribe (json
only, PROTOCOL.md section 6.1) and takes ``--per-audio-second`` seconds to answer
per second of audio it is sent. dropscribe runs `once` with `formats: [txt, srt]`
at the endpoint defaults (max_concurrency 4), so the srt comes from spans of about
20 s placed at their sound. The baseline is one curl upload of the whole WAV to the
same model (with the server's duration cap lifted, or it would be refused), as a
client that does not split would make, and which could only give a one-cue srt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from common import curl_upload, once_config, recording, run_once  # noqa: E402
from fakeapi import FakeAPI, Rules  # noqa: E402

MODEL = "gpt-4o-mini-transcribe"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--per-audio-second", type=float, default=0.03)
    args = parser.parse_args()
    with recording(args.minutes * 60, "spans") as (work, inbox, wav):
        size = wav.stat().st_size
        print(f"recording: {args.minutes:g} min, {size / 1e6:.0f} MB WAV")

        with FakeAPI(per_audio_second=args.per_audio_second) as api:
            config = once_config(
                work, {"base_url": api.base_url, "timeout": 3600}, inbox, model=MODEL
            )
            spans, peak_mib = run_once(config)
            sent = sum(u.size for u in api.uploads)
            count = len(api.uploads)
            refused = sum(u.reply != "200" for u in api.uploads)
            cues = (inbox / "meeting.srt").read_text().count(" --> ")

        lenient = {MODEL: Rules(frozenset({"json"}))}
        with FakeAPI(per_audio_second=args.per_audio_second, models=lenient) as api:
            whole = curl_upload(wav, api.base_url, f"model={MODEL}", "response_format=json")
            assert api.uploads[0].size == size

        print(f"one whole upload (curl):     {whole:7.1f} s, {size / 1e6:8.1f} MB sent, 1 cue")
        print(
            f"dropscribe ({count} spans):  {spans:7.1f} s, {sent / 1e6:8.1f} MB sent, "
            f"{cues} cues, {refused} refused"
        )
        print(
            f"{whole / spans:.2f}x the speed of one upload (target >= 1x); "
            f"{size / sent:.0f}x fewer bytes (target >= 10x); peak RSS {peak_mib:.0f} MiB"
        )


if __name__ == "__main__":
    main()
