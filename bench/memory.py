"""Peak RSS of `dropscribe once` uploading one large file (default 1 GiB).

    python bench/memory.py [--gib 1]

The file is a WAV header followed by silence, written sparse so that making it
costs no disk. The fake server stream-parses the body (its own memory stays flat
too) and checks the byte count and sha256 that arrived.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from common import run_once  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402


def sparse_wav(path: Path, size: int) -> None:
    data = size - 44
    header = (
        b"RIFF"
        + struct.pack("<I", size - 8)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", data)
    )
    with path.open("wb") as fh:
        fh.write(header)
        fh.truncate(size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.gib * 1024**3)
    work = Path(tempfile.mkdtemp(prefix="dropscribe-mem-"))
    try:
        inbox = work / "inbox"
        inbox.mkdir()
        big = inbox / "meeting.wav"
        sparse_wav(big, size)
        digest = hashlib.sha256()
        with big.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        with FakeAPI() as api:
            config = work / "mem.yaml"
            config.write_text(
                json.dumps(
                    {
                        "endpoints": {
                            "fake": {
                                "base_url": api.base_url,
                                "timeout": 600,
                                "max_upload_bytes": 0,
                            }
                        },
                        "defaults": {"endpoint": "fake", "model": "whisper-1", "settle_seconds": 0},
                        "inboxes": [{"path": str(inbox)}],
                        "state_dir": str(work / "state"),
                        "log": {"format": "json", "level": "warning"},
                    }
                )
            )
            elapsed, peak_mib = run_once(config)
            up = api.uploads[0]
        assert up.size == size, (up.size, size)
        assert up.sha256 == digest.hexdigest()
        print(
            f"uploaded {size / 1024**3:.2f} GiB in {elapsed:.1f} s "
            f"({size / 1024**2 / elapsed:.0f} MiB/s), bytes and sha256 verified by the server"
        )
        print(f"peak RSS of dropscribe: {peak_mib:.1f} MiB (target <= 150 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
