"""What an answer costs a worker when a server answers a 1-s recording with 64 MiB of
JSON, and how large honest answers are (answers21).

    python bench/answers.py [--shapes] [--hostile honest|text|segments|all] [--rounds 3]

``--shapes``: the bytes a second of audio of each answer shape the fake server gives
(PROTOCOL.md section 1.4's formats and section 4's kinds), for dense speech (3 and 6
words a second, whisper.cpp's segment per word, every character escaped as \\uXXXX)
and for an answer at ``transcript.bounded``'s caps (20 segments and 20 words a second,
200 characters a second in each text): what ``BYTES_PER_SECOND`` is chosen from.

``--hostile``: wall seconds and peak RSS (MiB) of ``dropscribe once`` with
``processes: 1`` (its worker a thread of it), of the dropscribe on ``PYTHONPATH`` (run it
once with the tree before the change, once with this one), on a 1-s WAV answered with
64 MiB less 1 KiB of valid JSON: one text of short words, or segments of one word each
(``honest``: a sentence, the process's own floor).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from common import once_config  # noqa: E402
from conftest import make_wav  # noqa: E402
from fakeapi import FakeAPI, Reply, Upload  # noqa: E402

CEILING = 64 * 2**20  # max_answer_bytes's default
WORDS = ("the", "budget", "review", "moves", "to", "thursday", "and", "ana", "will", "send")


def speech(seconds: int, per_second: float, *, cjk: bool = False) -> dict[str, Any]:
    """A dense honest transcript in verbose_json's shape: a segment every ~3 s with
    OpenAI's fields and a token per word, and word times with their probability."""
    count = int(seconds * per_second)
    said = [("中文" if cjk else WORDS[n % len(WORDS)]) for n in range(count)]
    step = 1 / per_second
    words = [
        {"word": w, "start": round(n * step, 2), "end": round((n + 0.8) * step, 2)}
        for n, w in enumerate(said)
    ]
    per_segment = max(1, int(3 * per_second))
    segments = []
    for first in range(0, count, per_segment):
        group = said[first : first + per_segment]
        segments.append(
            {
                "id": len(segments),
                "seek": int(first * step) // 30 * 3000,
                "start": round(first * step, 2),
                "end": round((first + len(group)) * step, 2),
                "text": " " + " ".join(group),
                "tokens": [50364 + (first + n) % 20000 for n in range(len(group) + 2)],
                "temperature": 0.0,
                "avg_logprob": -0.2345678912,
                "compression_ratio": 1.3456789123,
                "no_speech_prob": 0.0123456789,
            }
        )
    return {
        "task": "transcribe",
        "language": "english",
        "duration": float(seconds),
        "text": " ".join(said),
        "segments": segments,
        "words": words,
    }


def per_word(answer: dict[str, Any]) -> dict[str, Any]:
    """The same words, a segment each (whisper.cpp's -ml 1), with its word times."""
    segments = [
        {
            "id": n,
            "seek": 0,
            "start": w["start"],
            "end": w["end"],
            "text": " " + w["word"],
            "tokens": [50364, 1000 + n % 30000],
            "temperature": 0.0,
            "avg_logprob": -0.2345678912,
            "compression_ratio": 1.3456789123,
            "no_speech_prob": 0.0123456789,
        }
        for n, w in enumerate(answer["words"])
    ]
    return {**answer, "segments": segments}


def at_caps(seconds: int) -> dict[str, Any]:
    """An answer at ``bounded``'s caps: 20 segments and 20 words a second, 200 characters
    a second of text, of segments' texts and of words' each, all CJK (escaped)."""
    count = 20 * seconds
    chars = "中" * 10  # 20 items x 10 characters = 200 a second
    step = 1 / 20
    segments = [
        {
            "id": n,
            "seek": 0,
            "start": round(n * step, 2),
            "end": round((n + 1) * step, 2),
            "text": chars,
            "tokens": [50364 + n % 20000 for _ in range(12)],
            "temperature": 0.0,
            "avg_logprob": -0.2345678912,
            "compression_ratio": 1.3456789123,
            "no_speech_prob": 0.0123456789,
            "speaker": "SPEAKER_01",
        }
        for n in range(count)
    ]
    words = [
        {
            "word": chars,
            "start": s["start"],
            "end": s["end"],
            "probability": 0.987654321,
            "speaker": "SPEAKER_01",
        }
        for s in segments
    ]
    return {
        "task": "transcribe",
        "language": "chinese",
        "duration": float(seconds),
        "text": chars * count,
        "segments": segments,
        "words": words,
    }


def shapes() -> None:
    """Bytes a second of each shape the fake server answers in, for each answer."""
    seconds = 600
    answers = {
        "3 words/s": speech(seconds, 3),
        "6 words/s": speech(seconds, 6),
        "6 words/s, a segment each": per_word(speech(seconds, 6)),
        "6 CJK words/s, a segment each": per_word(speech(seconds, 6, cjk=True)),
        "at bounded's caps (20/s, 200 chars/s)": at_caps(seconds),
    }
    kinds = [
        ("openai", "json"),
        ("openai", "text"),
        ("openai", "verbose_json"),
        ("openai", "diarized_json"),
        ("mistral", None),
        ("together", None),
        ("asr", None),
    ]
    print(f"bytes a second of audio ({seconds} s), as the fake server shapes each answer")
    head = " | ".join(f"{kind} {fmt or ''}".strip() for kind, fmt in kinds)
    print(f"| answer | {head} | verbose_json, words inside segments too |")
    print("|---" * (len(kinds) + 2) + "|")
    servers = [FakeAPI(kind=kind) for kind, _ in kinds]  # never started: shaped() only
    for name, answer in answers.items():
        cells = []
        for api, (_, fmt) in zip(servers, kinds, strict=True):
            fields = {"response_format": fmt} if fmt else {}
            if fmt in {"verbose_json", None}:
                fields["timestamp_granularities[]"] = "word"
            upload = Upload("/v1/audio/transcriptions", {}, fields, filename="a.wav")
            upload.seconds = seconds
            reply = api.shaped(upload, answer)
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            cells.append(f"{len(body.encode()) / seconds:,.0f}")
        nested = dict(answer)
        nested["segments"] = [
            {**s, "words": [w for w in answer["words"] if s["start"] <= w["start"] < s["end"]]}
            for s in answer["segments"]
        ]
        cells.append(f"{len(json.dumps(nested).encode()) / seconds:,.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def hostile(shape: str) -> bytes:
    """64 MiB less 1 KiB of valid JSON for a 1-s recording, of one ``shape``."""
    room = CEILING - 1024
    if shape == "honest":  # the baseline: an ordinary answer, the file done
        return json.dumps({"text": "the budget review moves to thursday"}).encode()
    if shape == "text":
        return json.dumps({"text": "w " * ((room - 40) // 2), "duration": 1.0}).encode()
    one = json.dumps({"start": 0.0, "end": 0.05, "text": "w"}) + ", "
    count = (room - 60) // len(one)
    body = '{"text": "w", "duration": 1.0, "segments": [' + one * count
    return (body.removesuffix(", ") + "]}").encode()


def run(config: Path) -> tuple[float, float, int, int | None]:
    """``dropscribe once -c CONFIG``: wall seconds, peak RSS (MiB: its VmHWM, read until
    it exits; a child's ru_maxrss starts from this process's, 64 MiB answer and all),
    exit code, and the worker's ms in the request (``upload.failed``'s: sent, read,
    parsed and held to the audio; None when it did not fail)."""
    started = time.perf_counter()
    log = config.with_suffix(".log")
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dropscribe", "once", "-c", str(config)], stderr=err
        )
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        with contextlib.suppress(OSError, StopIteration, ValueError):
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
            peak = max(peak, int(line.split()[1]))
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    failed = [e for e in map(json.loads, log.open()) if e.get("event") == "upload.failed"]
    return elapsed, peak / 1024, proc.returncode, failed[0]["ms"] if failed else None


def measure(shape: str, rounds: int) -> None:
    body = hostile(shape)
    times, peaks, said, worker = [], [], "", []
    for n in range(rounds):
        work = Path(tempfile.mkdtemp(prefix="dropscribe-answers-"))
        try:
            inbox = work / "inbox"
            inbox.mkdir()
            make_wav(inbox / "a.wav", seconds=1.0)
            with FakeAPI(kind="speaches") as api:
                api.script.append(Reply(200, raw=body))
                endpoint = {"kind": "speaches", "base_url": api.base_url, "max_attempts": 1}
                config = once_config(work, endpoint, inbox, name=f"r{n}", model="m")
                data = json.loads(config.read_text())
                config.write_text(json.dumps({**data, "processes": 1}))  # the worker a thread
                seconds, peak, code, ms = run(config)
            if shape == "honest":
                said = (inbox / "a.txt").read_text().strip()
                assert code == 0, code
            else:
                said = json.loads((inbox / "failed" / "a.wav.error.json").read_text())["reason"]
                assert code == 1, code
            times.append(seconds)
            worker += [ms] if ms is not None else []
            peaks.append(peak)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    ms = f", the request {statistics.median(worker):,.0f} ms" if worker else ""
    print(
        f"{shape}: {len(body):,} bytes; `once` {statistics.median(times):.2f} s"
        f" ({min(times):.2f}-{max(times):.2f}){ms}, peak RSS {statistics.median(peaks):.0f} MiB"
        f" ({min(peaks):.0f}-{max(peaks):.0f}), median of {rounds}; {said[:160]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", action="store_true")
    parser.add_argument("--hostile", choices=["honest", "text", "segments", "all"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.shapes:
        shapes()
    every = ("honest", "text", "segments")
    for shape in every if args.hostile == "all" else [args.hostile] * bool(args.hostile):
        measure(shape, args.rounds)


if __name__ == "__main__":
    main()
