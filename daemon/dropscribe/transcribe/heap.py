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
(3.35 M minor page faults against 2.08 M on ten minutes of speech). By default it is
the other way round: one glibc heap (glibc gives each thread that allocates at once a
heap of its own, and two batches at once filled two more; one heap for all kept the
peak at 545-570 MiB against 720, at the same CPU time), and, while the engine works
(``engaged()``), no block mapped alone, however large, nor the heap's top trimmed:
glibc maps every block over 32 MiB alone whatever its threshold says, so the encoder's
attention (54 MB a piece) was faulted in afresh for every piece (1.1-1.3 M minor
faults and 2.5-2.8 s of system time on ten minutes of speech, against 0.2 M and
0.6-1.0 s; about 20 MiB more at the peak). Once the last transcription or alignment
ends, glibc's limits are put back where its own adaptive ones end up (it adapts them
no more once they were set) and the free pages are handed back (``settle``), so an
idle daemon does not sit on its peak, and the rest of the daemon (uploads,
re-encoding) runs as glibc would run it. ``small`` is for machines where memory is short.
Where the C library is not glibc (musl), the glibc calls are skipped and only MKL's
setting applies; settings in the environment (``MALLOC_*_``, ``GLIBC_TUNABLES``) win.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import threading
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameters, from <malloc.h>
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
M_ARENA_MAX = -8
MMAPS_DEFAULT = 65536  # glibc's own M_MMAP_MAX
ADAPTED_MAPPING = 32 << 20  # the most glibc's adaptive M_MMAP_THRESHOLD grows to (64-bit)
ARENAS = 1  # glibc heaps the engine's threads share (glibc's own: 8 a core)
SETTING = "DROPSCRIBE_HEAP"  # "small": the low-memory setting; anything else: none
OWN_MAPPING = 4 << 20  # blocks from this size up are mapped (and unmapped) alone
KEPT_TOP = 128 << 20  # free heap top glibc keeps rather than trims on each free
KEPT_ALL = (1 << 31) - 1  # while engaged: the heap's top is never trimmed (a C int)


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
    if _told():
        return
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, OWN_MAPPING)
        libc.mallopt(M_TRIM_THRESHOLD, KEPT_TOP)


class _Engaged:
    """How many transcriptions and alignments run now, under a lock: the first in sets
    the engine's way, the last out puts glibc's back and settles."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0


_engaged = _Engaged()


@contextlib.contextmanager
def engaged() -> Iterator[None]:
    """While a model transcribes or aligns: nothing mapped alone, the top never trimmed
    (not in the low-memory setting, nor where the environment says how)."""
    with _engaged.lock:
        _engaged.count += 1
        if _engaged.count == 1:
            _keep(keep=True)
    try:
        yield
    finally:
        with _engaged.lock:
            _engaged.count -= 1
            if _engaged.count == 0:
                _keep(keep=False)
                settle()


def _keep(*, keep: bool) -> None:
    """The engine's way (``keep``), or glibc's limits back where its own adaptive ones
    end up after large blocks: once a limit is set, glibc no longer adapts them, and
    left at their starting values (128 KiB) every block over 128 KiB would be mapped
    and faulted in afresh (ten times the page faults on the engine's work)."""
    libc = _libc()
    if small() or _told() or libc is None or not hasattr(libc, "mallopt"):
        return
    libc.mallopt(M_MMAP_MAX, 0 if keep else MMAPS_DEFAULT)
    if not keep:
        libc.mallopt(M_MMAP_THRESHOLD, ADAPTED_MAPPING)
    libc.mallopt(M_TRIM_THRESHOLD, KEPT_ALL if keep else 2 * ADAPTED_MAPPING)


def release(*, batch: bool = False) -> None:
    """Return the heaps' free pages to the system after a step in the low-memory
    setting; while engaged, after a ``batch`` only."""
    if small() or (batch and _engaged.count):
        settle()


def settle() -> None:
    """Return the heaps' free pages to the system (glibc's ``malloc_trim``, a few ms)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _told() -> bool:
    """Whether the environment already says how glibc maps and trims."""
    said = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_")
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(k in os.environ for k in said) or "glibc.malloc" in tunables


def small() -> bool:
    """Whether the low-memory setting is asked for (read each time: a reload may change it)."""
    return os.environ.get(SETTING, "").strip().lower() == "small"


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
