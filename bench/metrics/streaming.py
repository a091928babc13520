"""Decode on CPU threads, ahead of the device: ordered batches, pinned for an asynchronous copy.

PIL, cv2 and numpy release the GIL, so a few threads decode in parallel with the networks
without the memory of worker processes. Each batch is one job (load every item, then collate,
then pin when the device is a GPU); at most ``ahead`` batches are in flight, so memory does not
grow with the number of images, and batches come back in index order.
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
    """Yield ``collate([load(i) for i in batch])`` for consecutive batches of ``range(n)``, in order."""
    starts = iter(range(0, n, batch_size))

    def job(s: int) -> Any:
        return pin(collate([load(i) for i in range(s, min(s + batch_size, n))]), device)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()

        def submit() -> None:
            s = next(starts, None)
            if s is not None:
                pending.append(pool.submit(job, s))

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
