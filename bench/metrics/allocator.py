"""Freed memory kept for reuse while the metrics run on the CPU (glibc's malloc thresholds fixed).

A CPU scoring run allocates and frees the same large buffers thousands of times: each network
call's activations (Inception's first feature maps are 22-44 MB per chunk of 8 images), SSIM's
filtered maps and their temporaries. glibc's malloc, by default, serves a block above a dynamic
threshold (at most 32 MiB) with a fresh ``mmap`` and returns the heap's free top to the system
once it exceeds twice that threshold, so many of those buffers come back as new pages that the
kernel zero-fills on first touch, one fault per 4 KiB. Measured on 571 pairs of the DeepFashion-
scale benchmark (cfld-256, 2 cores, warm reference cache, alternated runs): 8-10 s of system time
in an 83 s command by default; with the thresholds fixed below, 1.7 s, the pass over the pairs 7%
faster (mostly Inception's own activations) and the same peak RSS (1.11 GB). This is what the
jemalloc/tcmalloc preloads that CPU-inference guides recommend achieve, without a dependency.

Blocks above 32 MiB (glibc's ceiling for the threshold) are still mapped and unmapped each time;
the heap's free top is returned to the system only above 512 MiB, so the process stays at the
size of its largest working set (which the peak RSS measures anyway). Only glibc (Linux) has
``mallopt``; elsewhere nothing changes and the call says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

SETTINGS = {
    M_MMAP_THRESHOLD: 32 * 2**20,  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
    M_TRIM_THRESHOLD: 512 * 2**20,
    M_TOP_PAD: 64 * 2**20,  # the heap grows in 64 MiB steps (untouched pages are not resident)
}


@functools.cache
def keep_freed_memory() -> bool:
    """Fix glibc's malloc thresholds for this process (once); True when they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in SETTINGS.items())
