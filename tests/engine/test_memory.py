"""release_free_memory hands freed heap pages back (the engine calls it before the Fréchet distance)."""

from __future__ import annotations

import sys

import pytest

from bench.memory import release_free_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc (Linux) only")
def test_freed_heap_blocks_leave_resident_memory() -> None:
    # 3,000 blocks of 64 KB: below glibc's mmap threshold, so they live in the heap; the block
    # allocated after them pins the heap top, so free() alone cannot shrink it.
    blocks = [bytearray(64 * 1024) for _ in range(3000)]
    pin = bytearray(64 * 1024)
    del blocks
    before = _rss_mb()
    assert release_free_memory() is True
    after = _rss_mb()
    assert before - after > 100, (before, after)
    del pin
