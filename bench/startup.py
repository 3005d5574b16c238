"""How long each command takes from a fresh process, this tree against another.

    python bench/startup.py [--rounds 5] [--against main]

Times, as wall and CPU seconds (user + system) of a fresh process from its start to its
exit (medians of ``--rounds``),
``dropscribe --help``, ``check-config``, ``status``, and ``once`` on a 1-s WAV of
espeak-ng speech through the local engine (the bundled tiny.en) and through FakeAPI on
127.0.0.1; and the CPU seconds of ``import dropscribe.commands.cli``. With ``--against
REF`` the same commands also run on the package as it is at that git ref (exported to a
temporary folder and put first on PYTHONPATH), the two trees alternating within each
round, so both see the same load: the machine may be shared, and the 1-min load average
(median of the readings before each run) is printed beside the figures.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from common import once_config  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402

IMPORT_CPU = (
    "import resource, sys; import dropscribe.commands.cli;"
    " r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime)"
)


def speech(path: Path) -> None:
    """About a second of espeak-ng speech (a tone where espeak-ng is missing)."""
    if shutil.which("espeak-ng"):
        subprocess.run(["espeak-ng", "-w", str(path), "hello world"], check=True)
        return
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x10" * 16000)


def config(work: Path, endpoint: dict[str, object]) -> Path:
    """A config in ``work`` with one inbox and this endpoint, txt and srt."""
    (work / "inbox").mkdir(parents=True, exist_ok=True)
    model = "tiny.en" if endpoint.get("kind") == "local" else "whisper-1"
    return once_config(work, endpoint, work / "inbox", model=model)


def cpu() -> float:
    """CPU seconds of this script's children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(
    argv: list[str], source: Path, wav: Path | None = None, work: Path | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -m dropscribe ARGV`` with ``source`` first on the path;
    with ``wav``, a fresh copy of it in the inbox first (and the ledger emptied)."""
    if wav is not None and work is not None:
        shutil.rmtree(work / "state", ignore_errors=True)
        shutil.rmtree(work / "inbox")
        (work / "inbox").mkdir()
        shutil.copy(wav, work / "inbox" / "hello.wav")
    env = {**os.environ, "PYTHONPATH": str(source)}
    start, used = time.perf_counter(), cpu()
    subprocess.run(
        [sys.executable, "-m", "dropscribe", *argv],
        check=wav is not None or argv[0] != "--help",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, cpu() - used


def import_cpu(source: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(source)}
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_CPU], check=True, env=env, capture_output=True, text=True
    )
    return float(run.stdout)


def export(ref: str, into: Path) -> Path:
    """The package as it is at ``ref``, unpacked under ``into``; the folder to put on the path."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "daemon"], check=True, capture_output=True
    ).stdout
    tar = into / "tree.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as tf:
        tf.extractall(into, filter="data")
    return into / "daemon"


def trees(against: str | None, top: Path) -> dict[str, Path]:
    """The package trees a bench runs: this checkout's, and ``against``'s (a git ref,
    unpacked under ``top``) when one is named."""
    found = {"this tree": ROOT / "daemon"}
    if against:
        (top / "ref").mkdir()
        found[against] = export(against, top / "ref")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", metavar="REF", help="also time the package at this git ref")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp, FakeAPI() as api:
        top = Path(tmp)
        trees = {"this tree": ROOT / "daemon"}
        if args.against:
            (top / "ref").mkdir()
            trees = {args.against: export(args.against, top / "ref"), **trees}
        wav = top / "hello.wav"
        speech(wav)
        local = config(top / "local", {"kind": "local"})
        fake = config(top / "fake", {"base_url": api.base_url})
        cases = {
            "import cli": None,
            "--help": ["--help"],
            "check-config": ["check-config", "-c", str(fake)],
            "status": ["status", "-c", str(fake)],
            "once, local engine": ["once", "-c", str(local)],
            "once, FakeAPI": ["once", "-c", str(fake)],
        }
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        loads: list[float] = []
        for _ in range(args.rounds):
            for case, argv in cases.items():
                for name, source in trees.items():
                    loads.append(os.getloadavg()[0])
                    if argv is None:
                        took = (math.nan, import_cpu(source))
                    elif argv[0] == "once":
                        took = timed(argv, source, wav, Path(argv[2]).parent)
                    else:
                        took = timed(argv, source)
                    times.setdefault((case, name), []).append(took)
        print(f"medians of {args.rounds}; load average (1 min) {statistics.median(loads):.1f}")
        print(f"{'wall s, CPU s':24}" + "".join(f"{name:>16}" for name in trees))
        for case in cases:
            row = ""
            for name in trees:
                wall = statistics.median(t[0] for t in times[case, name])
                used = statistics.median(t[1] for t in times[case, name])
                row += f"{'-' if math.isnan(wall) else f'{wall:.2f}':>10}{used:>6.2f}"
            print(f"{case:24}{row}")


if __name__ == "__main__":
    main()
