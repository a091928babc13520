"""Decode on CPU threads: ahead of a GPU (ordered batches, pinned for an asynchronous copy), and
between the network calls on the CPU.

PIL, cv2 and numpy release the GIL, so a few threads decode in parallel without the memory of worker
processes. Each batch's items are spread over the threads and come back in index order; memory
does not grow with the number of images.

- **GPU**: each batch is one job (load, collate, pin); up to ``ahead`` batches are decoded while
  the device computes.
- **CPU**: a batch is decoded when the networks ask for it, every thread on its share, and nothing
  is decoded while they run. Decoding alongside the networks competes with torch's own threads for
  the same cores and stalls each of their parallel regions: on this 2-core machine Inception took
  54.4 ms per image with the next batches decoding in the background, 45.8 ms with the same decoding
  done in between, 42.9 ms on images decoded beforehand (`benchmarks/decode_overlap.py`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch


def pin(x: Any, device: torch.device) -> Any:
    """Page-locked copies of the tensors in ``x`` (a tensor, list, tuple or dict) when copying to a GPU."""
    if device.type != "cuda":
        return x
    if isinstance(x, torch.Tensor):
        return x.pin_memory()
    if isinstance(x, dict):
        return {k: pin(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(pin(v, device) for v in x)
    return x


def to_device(x: Any, device: torch.device) -> Any:
    """Move the tensors in ``x`` to ``device`` (asynchronous from pinned memory)."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(to_device(v, device) for v in x)
    return x


def prefetch_batches(
    n: int,
    load: Callable[[int], Any],
    collate: Callable[[list[Any]], Any],
    batch_size: int,
    workers: int,
    ahead: int,
    device: torch.device,
) -> Iterator[Any]:
    """Yield ``collate([load(i) for i in batch])`` for consecutive batches of ``range(n)``, in order.

    ``workers`` threads decode (0: the calling thread); ``ahead`` batches are decoded in advance for
    a GPU, none for the CPU (see the module doc).
    """
    spans = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if workers <= 0:
        for s, e in spans:
            yield pin(collate([load(i) for i in range(s, e)]), device)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        if device.type == "cpu":
            for s, e in spans:
                yield collate(list(pool.map(load, range(s, e))))
            return

        def job(s: int, e: int) -> Any:
            return pin(collate([load(i) for i in range(s, e)]), device)

        todo = iter(spans)
        pending: deque = deque()

        def submit() -> None:
            span = next(todo, None)
            if span is not None:
                pending.append(pool.submit(job, *span))

        for _ in range(max(1, ahead, workers)):
            submit()
        try:
            while pending:
                future = pending.popleft()
                submit()
                yield future.result()
        finally:
            for future in pending:
                future.cancel()


def progress(it: Iterator, total: int, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, unit="batch")
