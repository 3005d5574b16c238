"""attack19: the probe and the cut check against 2,100 mutated real files (FLAC, MP3,
Matroska and Ogg Opus, WAV, MP4 AAC made by PyAV and wave): bytes overwritten in the
headers (with 0, -1, 2**31 - 1, NaN's and infinity's bytes), bits flipped, files cut
anywhere, runs of bytes repeated (loops), files grown sparse by 256 MiB of zeros. Each
gives a probe, its tracks and a cut verdict or a PermanentError, never another exception (an unknown
codec's AttributeError was one), never the process's death, in bounded memory, and the cut
check never reads more than its bounds allow. In a process of its own: an abort in
FFmpeg is a failure with the mutant's number, not a dead test run."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import patience, write_tones

pytestmark = pytest.mark.slow

EACH = 350  # mutants of each format
MiB = 1024 * 1024
TONES = [(3.0 * n, 3.0 * n + 2.0, 300 + 100 * n) for n in range(4)]
FORMATS = {  # name -> suffix, write_tones' arguments
    "flac": (".flac", {"container": "flac", "codec": "flac"}),
    "mp3": (".mp3", {"container": "mp3", "codec": "libmp3lame"}),
    "mka2": (".mka", {"rate": 48000, "container": "matroska", "codec": "libopus"}),
    "ogg": (".ogg", {"rate": 48000, "container": "ogg", "codec": "libopus"}),
    "wav": (".wav", {}),
    "m4a": (".m4a", {"container": "mp4", "codec": "aac"}),
}
ODD = [b"\xff" * 4, b"\x7f\xff\xff\xff", b"\x80\0\0\0", b"\0" * 4, b"\xff" * 8]
ODD += [b"\x7f\xf8" + bytes(6), b"\xff\xf0" + bytes(6), b"\x01" + b"\xff" * 7]


def mutant(data: bytes, rng: random.Random) -> tuple[bytes, int]:
    """``data`` spoiled in 1-8 places (mostly its first 4 kB), and one of: cut short, to
    be grown by zeros (the second value), a stretch repeated; or only spoiled."""
    out = bytearray(data)
    kind = rng.randrange(6)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(min(len(out), 4096) if rng.random() < 0.7 else len(out))
        how = rng.randrange(4)
        if how == 0:
            out[at] = rng.randrange(256)
        elif how == 1:
            out[at] ^= 1 << rng.randrange(8)
        elif how == 2:
            odd = rng.choice(ODD)
            out[at : at + len(odd)] = odd
        else:
            value = rng.choice([-1, -(2**31), 2**31 - 1, 0, 1, 2**24])
            out[at : at + 4] = struct.pack("<i" if rng.random() < 0.5 else ">i", value)
    grow = 0
    if kind == 0:
        out = out[: rng.randrange(len(out))]
    elif kind == 1:
        grow = rng.choice([1 * MiB, 256 * MiB])
    elif kind == 2:
        a = rng.randrange(len(out))
        b = min(len(out), a + rng.randrange(1, 5000))
        out = out[:b] + out[a:b] * rng.randint(2, 50) + out[b:]
    return bytes(out), grow


def peak() -> int:
    """This process's own peak RSS in bytes (VmHWM). Not getrusage's ru_maxrss: the kernel
    keeps the high-water mark of the memory an exec replaced, and subprocess's vfork
    gives the child the parent's (a pytest worker at 1.1 GB in a full run with coverage
    made this child look 1.1 GB)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def bytes_read() -> int:
    with open("/proc/self/io") as io:
        return int(next(line for line in io if line.startswith("rchar:")).split()[1])


def run(name: str, seed: Path, scratch: Path) -> None:
    """In the child: each mutant of ``seed`` probed and checked; a JSON line before it
    (its number) and after (what came of it, and what the cut check read)."""
    from dropscribe.audio import cut, probe
    from dropscribe.errors import PermanentError

    data = seed.read_bytes()
    path = scratch / f"{name}{seed.suffix}"
    for n in range(EACH):
        spoiled, grow = mutant(data, random.Random(f"{name}-{n}"))
        path.write_bytes(spoiled)
        os.truncate(path, len(spoiled) + grow)
        print(json.dumps({"n": n}), flush=True)
        read, outcome = 0, "probed"
        try:
            found = probe.examine(path)
            probe.tracks(path)
            before = bytes_read()
            cut.short(path, found)
            read = bytes_read() - before
        except PermanentError:
            outcome = "refused"
        except Exception as exc:  # what the test is for
            outcome = f"{exc.__class__.__name__}: {exc}"
        print(json.dumps({"n": n, "outcome": outcome, "read": read}), flush=True)
    rss = peak()
    print(json.dumps({"rss": rss}), flush=True)


def test_two_thousand_mutated_files_are_probed_and_checked_within_bounds(tmp_path):
    """2,100 mutants: each probed or refused with a reason and its cut told, no other
    exception, no death; the cut check reads at most its bounds (two openings of 64 MiB
    and 16 MiB past each, not a grown file's 256 MiB twice), the process under 300 MB."""
    seeds = tmp_path / "seeds"
    outcomes: dict[str, int] = {}
    for name, (suffix, how) in FORMATS.items():
        seed = write_tones(seeds / f"a{suffix}", TONES, 12.0, **how)  # type: ignore[arg-type]
        child = subprocess.run(
            [sys.executable, __file__, name, str(seed), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=patience(600),
            check=False,
            cwd=Path(__file__).parent,
        )
        lines = [json.loads(line) for line in child.stdout.splitlines()]
        last = lines[-1] if lines else {}
        assert child.returncode == 0, f"{name} #{last.get('n')}: {child.stderr[-2000:]}"
        done = [line for line in lines if "outcome" in line]
        assert len(done) == EACH
        odd = [
            f"#{d['n']} {d['outcome']}" for d in done if d["outcome"] not in {"probed", "refused"}
        ]
        assert not odd, f"{name}: {odd[:5]}"
        most = max(done, key=lambda d: d["read"])
        assert most["read"] < 200 * MiB, f"{name} #{most['n']} {most['read']:,} bytes read"
        assert last["rss"] < 300 * MiB, name
        for d in done:
            outcomes[d["outcome"]] = outcomes.get(d["outcome"], 0) + 1
    assert outcomes["probed"] > 1000  # the mutants are mostly still files to probe


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
