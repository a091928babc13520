"""Decoding threads: batches in order on every path; on the CPU nothing decoded while the networks run;
the SSIM filters split between threads give the single call's values."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import ndimage

from bench.metrics import ssim
from bench.metrics.streaming import prefetch_batches


def _run(n: int, batch: int, workers: int, device: str) -> tuple[list[list[int]], list[int], set[str]]:
    """(batches as index lists, the number of items loaded when each batch came back, loader threads)."""
    loaded: list[int] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def load(i: int) -> int:
        with lock:
            loaded.append(i)
            threads.add(threading.current_thread().name)
        return i

    out, seen = [], []
    for b in prefetch_batches(n, load, list, batch, workers, 2, torch.device(device)):
        seen.append(len(loaded))
        out.append(b)
    return out, seen, threads


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_cpu_batches_in_order_and_nothing_decoded_ahead(workers: int) -> None:
    batches, seen, threads = _run(23, 5, workers, "cpu")
    assert batches == [list(range(s, min(s + 5, 23))) for s in range(0, 23, 5)]
    # When batch k reaches the caller, exactly its items and those before have been loaded.
    assert seen == [min(5 * (k + 1), 23) for k in range(len(batches))]
    main = threading.main_thread().name
    assert threads == {main} if workers == 0 else main not in threads


def _loader() -> tuple[list[int], threading.Condition, Callable[[int], int]]:
    loaded: list[int] = []
    cond = threading.Condition()

    def load(i: int) -> int:
        with cond:
            loaded.append(i)
            cond.notify_all()
        return i

    return loaded, cond, load


def test_accelerator_path_decodes_ahead_in_order() -> None:
    # Any non-CPU device takes the prefetching path (pinning applies to CUDA only, so "meta" runs here).
    loaded, cond, load = _loader()
    it = prefetch_batches(23, load, list, 5, 2, 2, torch.device("meta"))
    batches = [next(it)]
    with cond:  # while the caller holds batch 0, the next two batches are decoded
        assert cond.wait_for(lambda: len(loaded) >= 15, timeout=30)
    batches += list(it)
    assert batches == [list(range(s, min(s + 5, 23))) for s in range(0, 23, 5)]


def test_cpu_path_decodes_nothing_while_the_caller_holds_a_batch() -> None:
    loaded, cond, load = _loader()
    it = prefetch_batches(23, load, list, 5, 2, 2, torch.device("cpu"))
    assert next(it) == [0, 1, 2, 3, 4]
    with cond:
        assert not cond.wait_for(lambda: len(loaded) > 5, timeout=0.3)
    assert next(it) == [5, 6, 7, 8, 9] and len(loaded) == 10


@pytest.mark.parametrize("sigma", [None, 1.5])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_split_filters_equal_one_ndimage_call(sigma: float | None, threads: int) -> None:
    x = torch.from_numpy(np.random.default_rng(0).random((7, 40, 30), dtype=np.float32))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ours = ssim._ndimage_valid(x, 11, sigma).numpy()
    finally:
        torch.set_num_threads(previous)
    if sigma is None:
        ref = ndimage.uniform_filter(x.numpy(), size=(1, 11, 11))
    else:
        ref = ndimage.gaussian_filter(x.numpy(), sigma=(0.0, sigma, sigma), truncate=ssim.TRUNCATE)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, ref[:, 5:-5, 5:-5])
