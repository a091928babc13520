"""Process memory under glibc: freed heap handed back at phase ends, and kept for reuse while
the metrics run on the CPU.

**Handing back** (peak RSS, issue 3).
glibc keeps freed blocks in its heap for reuse. After the evaluation networks and their
activations are freed, that memory stays resident, and the Fréchet distance's 2048x2048 float64
matrices (33 MB each, above glibc's mmap threshold, so never carved from the heap) are mapped on
top of it: measured +140 MB of peak RSS at the end of every `pgpis evaluate`. ``malloc_trim(0)``
returns the free heap pages first.

**Keeping for reuse** (time, issue 13). A CPU scoring run allocates and frees the same large buffers
thousands of times: each network call's activations (Inception's first feature maps are 22-44 MB
per chunk of 8 images), SSIM's filtered maps and their temporaries. By default glibc serves a block
above a dynamic threshold (at most 32 MiB) with a fresh ``mmap`` and returns the heap's free top to
the system once it exceeds twice that threshold, so many of those buffers come back as new pages
that the kernel zero-fills on first touch, one fault per 4 KiB. ``keep_freed_memory`` fixes the
thresholds (mmap above 32 MiB, glibc's ceiling; trim above 512 MiB). Measured on 571 pairs of the
DeepFashion-scale benchmark (cfld-256, 2 cores, cached reference statistics, alternated runs):
system time 7.7-9.8 s -> 1.7-2.0 s of an ~80 s command, the pass over the pairs 56-59 s against
60-63 s (mostly Inception's own activations), peak RSS unchanged (1.11 GB). This is what the
jemalloc/tcmalloc preloads of CPU-inference guides achieve, without a dependency. The heap then
stays at the size of the largest working set (what the peak RSS measures anyway), and
``release_free_memory`` still trims it explicitly between phases.

Elsewhere (macOS, musl) both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys

# mallopt parameters (glibc's malloc.h) and the values keep_freed_memory sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEEP_SETTINGS = {
    M_MMAP_THRESHOLD: 32 * 2**20,  # glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
    M_TRIM_THRESHOLD: 512 * 2**20,
    M_TOP_PAD: 64 * 2**20,  # the heap grows in 64 MiB steps (pages not touched are not resident)
}


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has malloc_trim/mallopt stubs)
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> bool:
    """Collect garbage and ask glibc to return free heap pages; True if glibc did so."""
    gc.collect()
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


@functools.cache
def keep_freed_memory() -> bool:
    """Fix glibc's malloc thresholds for this process (once; see the module doc); True when set."""
    libc = _glibc()
    return libc is not None and all(libc.mallopt(p, v) == 1 for p, v in KEEP_SETTINGS.items())


__all__ = ["keep_freed_memory", "release_free_memory"]
