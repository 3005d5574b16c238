"""The local engine's allocator settings, measured in a real process (issue 37): by
default a large work buffer freed and allocated again is not faulted in afresh (the
encoder's attention, 54 MB a piece, was, 13,000 page faults each time), and ``settle()``
hands the heap's free pages back once the work is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, resource, sys
import numpy as np
from dropscribe.transcribe import heap

# 4 KiB pages whatever the machine's transparent huge pages, so a fault is a page
ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

heap.before_threads()
faults = []
for _ in range(4):  # a step's buffer, written whole, then freed, as CTranslate2 does
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 << 20, dtype=np.uint8)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del block
held = rss()
heap.settle()
print(json.dumps({"faults": faults, "held": held, "settled": rss()}))
"""

PAGES = (64 << 20) // 4096  # a 64 MiB buffer faulted in afresh: one fault a page


def probe(**env: str) -> dict[str, list[int] | int]:
    """Faults of each 64 MiB allocation and RSS before and after settle(), in a fresh
    Python with the environment ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "DROPSCRIBE_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_large_buffer_used_again_is_not_faulted_in_afresh_by_default():
    """Default: the second to fourth 64 MiB buffers fault in under a tenth of their pages
    (glibc's own behaviour, and the low-memory setting's, is to map each afresh: every
    page each time); settle() then gives the memory back."""
    found = probe()
    assert found["faults"][0] >= PAGES // 2  # the first time, the pages are new
    assert max(found["faults"][1:]) < PAGES // 10, found
    assert found["settled"] < found["held"] - (32 << 20), found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_low_memory_setting_and_the_users_own_map_large_buffers_afresh():
    """DROPSCRIBE_HEAP=small, or a MALLOC_MMAP_MAX_ the user set, leaves large blocks
    mapped alone: every reuse faults every page in again (memory returned at once)."""
    for env in ({"DROPSCRIBE_HEAP": "small"}, {"MALLOC_MMAP_MAX_": "65536"}):
        found = probe(**env)
        assert min(found["faults"]) >= PAGES // 2, (env, found)
