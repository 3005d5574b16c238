"""The local engine's allocator settings: few heaps, and the low-memory setting.

CTranslate2, onnxruntime and numpy free their large work buffers after each step, but
glibc keeps freed memory in its heaps for reuse, and the next step's buffers rarely fit
the holes the last one left: the process holds on to memory it no longer uses. With
``DROPSCRIBE_HEAP=small`` in the environment, two things keep it near what is really
in use:

- ``before_loading()`` asks MKL (inside CTranslate2's wheels) to allocate through malloc
  instead of caching buffers of its own (``MKL_DISABLE_FAST_MM``), and tells glibc to
  give every block of 4 MiB or more its own mapping (returned to the system when freed)
  while keeping up to 128 MiB of free heap top for reuse.
- ``release()`` (glibc's ``malloc_trim``) hands free pages back after each step.

They cost time: every large buffer is mapped, faulted in and unmapped afresh each step
(3.35 M minor page faults against 2.08 M on ten minutes of speech), so the default is
glibc and MKL as they come but for the number of heaps (one: glibc gives each thread
that allocates at once a heap of its own, and two batches at once filled two more;
one heap for all kept the peak at 545-570 MiB against 720, at the same CPU time),
which ``bench/local.py`` measured faster (see docs/engines.md for the figures);
``small`` is for machines where memory is short. Where the C library
is not glibc (musl), the glibc calls are skipped and only MKL's setting applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameters, from <malloc.h>
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 1  # glibc heaps the engine's threads share (glibc's own: 8 a core)
SETTING = "DROPSCRIBE_HEAP"  # "small": the low-memory setting; anything else: none
OWN_MAPPING = 4 << 20  # blocks from this size up are mapped (and unmapped) alone
KEPT_TOP = 128 << 20  # free heap top glibc keeps rather than trims on each free


def before_threads() -> None:
    """At most ``ARENAS`` glibc heaps, set before the daemon's threads first allocate
    (a thread keeps the heap it was given; set when the model loads, in the thread that
    runs the file, the batches still spread over two heaps: 720 MiB at the peak against
    530 MiB with one, the same CPU time). A MALLOC_ARENA_MAX in the environment wins."""
    libc = _libc()
    if "MALLOC_ARENA_MAX" not in os.environ and libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, ARENAS)


def before_loading() -> None:
    """Set the allocators up: ``before_threads`` (again: a model may load in a process
    whose engine was made elsewhere); and the low-memory setting. MKL reads its setting
    when it first allocates, and a setting the user made in the environment wins."""
    before_threads()
    libc = _libc()
    if not small():
        return
    os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, OWN_MAPPING)
        libc.mallopt(M_TRIM_THRESHOLD, KEPT_TOP)


def release() -> None:
    """Return the heaps' free pages to the system (in the low-memory setting)."""
    if not small():
        return
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def small() -> bool:
    """Whether the low-memory setting is asked for (read each time: a reload may change it)."""
    return os.environ.get(SETTING, "").strip().lower() == "small"


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
