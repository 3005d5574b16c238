"""The local engine's allocator settings, measured in a real process (issue 37): while
a model works (``heap.engaged()``) a large buffer freed and allocated again is not
faulted in afresh (the encoder's attention, 54 MB a piece, was: 13,000 page faults each
time); once the last work ends, glibc's own way is back and the free pages are handed
back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dropscribe.transcribe import heap

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

def faulted():  # a step's buffer, written whole, then freed, as CTranslate2 does
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 << 20, dtype=np.uint8)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

with heap.engaged():
    faults = [faulted() for _ in range(4)]
    held = rss()
settled = rss()
after = [faulted() for _ in range(2)]
print(json.dumps({"faults": faults, "held": held, "settled": settled, "after": after}))
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
def test_a_large_buffer_used_again_is_not_faulted_in_afresh_while_engaged():
    """While engaged, the second to fourth 64 MiB buffers fault in under a tenth of their
    pages; once it ends the memory is given back, and each 64 MiB buffer is mapped
    afresh again (glibc's own way: every page each time)."""
    found = probe()
    assert found["faults"][0] >= PAGES // 2, found  # the first time, the pages are new
    assert max(found["faults"][1:]) < PAGES // 10, found
    assert found["settled"] < found["held"] - (32 << 20), found
    assert min(found["after"]) >= PAGES // 2, found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_the_low_memory_setting_and_the_users_own_map_large_buffers_afresh():
    """DROPSCRIBE_HEAP=small, or a MALLOC_MMAP_MAX_ the user set, leaves large blocks
    mapped alone even while engaged: every reuse faults every page in again."""
    for env in ({"DROPSCRIBE_HEAP": "small"}, {"MALLOC_MMAP_MAX_": "65536"}):
        found = probe(**env)
        assert min(found["faults"]) >= PAGES // 2, (env, found)


def test_the_way_is_kept_until_the_last_work_ends(monkeypatch):
    """Two transcriptions overlapping: the settings are made when the first starts and
    undone, the heaps trimmed, only when the last ends; meanwhile the heaps are trimmed
    after each batch, not after each piece's step."""
    calls = []

    class Libc:
        def mallopt(self, what, value):
            calls.append((what, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    for name in ("DROPSCRIBE_HEAP", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.setattr(heap, "_libc", Libc)
    first, second = heap.engaged(), heap.engaged()
    first.__enter__()
    second.__enter__()
    assert calls == [(heap.M_MMAP_MAX, 0), (heap.M_TRIM_THRESHOLD, heap.KEPT_ALL)]
    heap.release()  # a piece's step: kept
    heap.release(batch=True)  # a batch's end: the heap's holes handed back
    assert calls[2:] == [("trim", 0)]
    del calls[2:]
    first.__exit__(None, None, None)
    assert len(calls) == 2
    second.__exit__(None, None, None)
    assert calls[2:] == [
        (heap.M_MMAP_MAX, heap.MMAPS_DEFAULT),
        (heap.M_MMAP_THRESHOLD, 32 << 20),
        (heap.M_TRIM_THRESHOLD, 64 << 20),
        ("trim", 0),
    ]
