"""What the benchmarks share: running `dropscribe once` and measuring it."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def run_once(config: Path) -> tuple[float, float]:
    """Run ``dropscribe once -c CONFIG``; return its wall seconds and the peak RSS in MiB
    of this script's children so far (run it before any other child, such as curl)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dropscribe", "once", "-c", str(config)], check=True)
    elapsed = time.perf_counter() - start
    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def once_config(work: Path, base_url: str, model: str, inbox: Path) -> Path:
    """A config in ``work`` for one OpenAI-kind endpoint at its defaults, txt and srt."""
    config = work / "bench.yaml"
    config.write_text(json.dumps({
        "endpoints": {"fake": {"base_url": base_url, "timeout": 3600}},
        "defaults": {"endpoint": "fake", "model": model, "settle_seconds": 0,
                     "formats": ["txt", "srt"]},
        "inboxes": [{"path": str(inbox)}],
        "state_dir": str(work / "state"),
        "log": {"format": "json", "level": "warning"},
    }))  # fmt: skip
    return config
