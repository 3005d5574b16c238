"""What the benchmarks share: running `dropscribe once` and measuring it."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

RATE = 44100


def run_once(config: Path, *, quiet: bool = False) -> tuple[float, float]:
    """Run ``dropscribe once -c CONFIG`` (its log not shown, ``quiet``); return its wall
    seconds and the peak RSS in MiB of this script's children so far (run it before any
    other child, such as curl)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(config)],
        check=True,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    elapsed = time.perf_counter() - start
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def once_config(
    work: Path, endpoint: dict, inbox: Path, *, name: str = "bench", **defaults
) -> Path:
    """``work/NAME.yaml``: the config `dropscribe once` is run with in a benchmark, one
    endpoint (``endpoint``, as the config writes it), one inbox, txt and srt (or what
    ``defaults`` say, with the model), its state in ``work/state-NAME``."""
    config = work / f"{name}.yaml"
    config.write_text(
        json.dumps(
            {
                "endpoints": {"e": endpoint},
                "defaults": {
                    "endpoint": "e",
                    "settle_seconds": 0,
                    "formats": ["txt", "srt"],
                    **defaults,
                },
                "inboxes": [{"path": str(inbox)}],
                "state_dir": str(work / f"state-{name}"),
                "log": {"format": "json", "level": "warning"},
            }
        )
    )
    return config


def meeting(path: Path, seconds: int) -> None:
    """Speech-like audio: bursts of 1-8 s of modulated noise and tones, pauses of 0.2-2 s."""
    rng = np.random.default_rng(7)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(RATE)
        written = 0
        while written < seconds * RATE:
            talk = int(rng.uniform(1, 8) * RATE)
            pause = int(rng.uniform(0.2, 2.0) * RATE)
            t = np.arange(talk) / RATE
            voice = np.sin(2 * np.pi * rng.uniform(120, 300) * t) * (0.5 + 0.5 * np.sin(t * 9))
            voice += rng.standard_normal(talk) * 0.1
            noise = rng.standard_normal(pause) * 0.002
            block = (np.concatenate((voice * 0.25, noise)) * 32767).astype(np.int16)
            block = block[: seconds * RATE - written]
            out.writeframes(np.repeat(block[:, None], 2, axis=1).tobytes())
            written += len(block)


@contextlib.contextmanager
def recording(seconds: float, name: str) -> Iterator[tuple[Path, Path, Path]]:
    """A temporary folder with ``inbox/meeting.wav`` (``meeting``) of this length; yields
    the folder, the inbox and the WAV, and removes it all afterwards."""
    work = Path(tempfile.mkdtemp(prefix=f"dropscribe-{name}-"))
    try:
        inbox = work / "inbox"
        inbox.mkdir()
        wav = inbox / "meeting.wav"
        meeting(wav, int(seconds))
        yield work, inbox, wav
    finally:
        shutil.rmtree(work, ignore_errors=True)


def curl_upload(wav: Path, base_url: str, *fields: str) -> float:
    """Seconds for one curl upload of the whole ``wav`` with these form fields (name=value):
    the baseline of a client that does not split."""
    form = [arg for field in (f"file=@{wav}", *fields) for arg in ("-F", field)]
    start = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "--fail",
            "--max-time",
            "7200",
            *form,
            f"{base_url}/audio/transcriptions",
        ],
        check=True,
    )
    return time.perf_counter() - start
