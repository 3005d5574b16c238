"""Giving freed memory back to the system while the local engine works.

CTranslate2, onnxruntime and numpy free their large work buffers after each step, but
glibc keeps freed memory in its heaps for reuse, and the next step's buffers rarely fit
the holes the last one left: without help the process grows by about 100 MiB it never
returns. Two things keep it near what is really in use:

- ``before_loading()`` asks MKL (inside CTranslate2's wheels) to allocate through malloc
  instead of caching buffers of its own (``MKL_DISABLE_FAST_MM``), and tells glibc to
  give every block of 4 MiB or more its own mapping (returned to the system when freed;
  without this glibc raises the limit as large blocks come and go) while keeping up to
  128 MiB of free heap top for reuse (so the decoder's step-by-step buffers do not
  fault pages in afresh each step).
- ``release()`` (glibc's ``malloc_trim``) hands free pages back after each step.

With ``local.OneByOne``, the bench's peak RSS on 12 minutes went from 680 to 379 MiB,
no slower; each setting alone got only to 460-490 MiB. Where the C
library is not glibc (musl), the calls are skipped and only MKL's setting applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

M_TRIM_THRESHOLD = -1  # glibc's mallopt() parameters, from <malloc.h>
M_MMAP_THRESHOLD = -3
OWN_MAPPING = 4 << 20  # blocks from this size up are mapped (and unmapped) alone
KEPT_TOP = 128 << 20  # free heap top glibc keeps rather than trims on each free


def before_loading() -> None:
    """Set the allocators up for the engine; MKL reads its setting when it first
    allocates, and a setting the user made in the environment wins."""
    os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, OWN_MAPPING)
        libc.mallopt(M_TRIM_THRESHOLD, KEPT_TOP)


def release() -> None:
    """Return the heaps' free pages to the system."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return None
