"""Handing the heap's freed memory back to the operating system.

glibc's malloc serves allocations below its mmap threshold from the heap,
and raises that threshold (up to 32 MB) each time a larger block is freed.
Training then leaves the heap full of free holes between live tensors: the
tens of megabytes of temporaries of each scored evaluation land in new
heap space, and the resident memory of a worker grew by about 90 MB an
evaluation, to 5.5 GB for one ensemble of the published single-layer
protocol (51 evaluations of 10,000 points), where 1 GB was live.
`malloc_trim` returns every free page, wherever it lies, at the cost of a
few milliseconds; it changes no number. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_free_memory() -> bool:
    """Return the heap's free pages to the operating system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
