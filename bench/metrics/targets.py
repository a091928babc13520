"""Work that depends only on a pair's target image, done once per target instead of once per pair.

DeepFashion's 8,570 test pairs have 3,144 distinct targets: 63% of the pairs share their target
with an earlier one. The pass over the pairs therefore visits them grouped by target
(``target_order``; every value still lands at its pair's own row, so nothing a user sees changes
order) and reuses, within a group:

- the target's decoded and resized image (``DecodeOnce``: a high-res DeepFashion JPEG is the
  costliest decode of a pair);
- its LPIPS features (``TargetFeatures``): one of the two backbone passes per pair;
- a pixel metric's work on the target alone, where the metric declares it (``target_part``): SSIM's
  filtered target and its variance, two of the five filters of a pair.

Per image, a value never depends on which other images share a batch, so the grouping changes no
per-pair number; the running feature sums are order-free up to float64 rounding (1e-9 to 4e-9
relative in FID, measured), and feature vectors are put back in pair order (``features.FeatureCollector``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import torch

DECODED_TARGETS = 16  # decoded targets kept: pairs arrive grouped, so only the last few recur
TARGET_PART = "target_part"  # attribute naming a per-pair metric's target-side function


def target_part(part: Callable[..., list[torch.Tensor]]) -> Callable[[Callable], Callable]:
    """Declare that a per-pair metric ``fn(gt, pred, **settings)`` also takes ``target=part(gt, **settings)``
    computed earlier: the tensors (first dimension: one row per image) of its work on the GT image
    alone, which the engine then does once per target. ``fn(gt, pred, target=...)`` must equal
    ``fn(gt, pred)``."""

    def declare(fn: Callable) -> Callable:
        setattr(fn, TARGET_PART, part)
        return fn

    return declare


def target_part_of(fn: Callable) -> Callable[..., list[torch.Tensor]] | None:
    """The function ``target_part`` declared for ``fn``, if any."""
    return getattr(fn, TARGET_PART, None)


def target_order(targets: Sequence[str]) -> np.ndarray:
    """Row indices sorted by target name (stable: pairs of one target keep their order)."""
    return np.array(sorted(range(len(targets)), key=lambda i: (targets[i], i)), dtype=np.int64)


class DecodeOnce:
    """``fn(key)`` computed once per key among the last ``size`` keys, safely across decode threads.

    Two threads asking for the same key at once share one computation (the second waits for it);
    an error is raised to every thread that asked.
    """

    def __init__(self, fn: Callable[[Hashable], Any], size: int = DECODED_TARGETS) -> None:
        self._fn = fn
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Future] = OrderedDict()

    def __call__(self, key: Hashable) -> Any:
        with self._lock:
            entry = self._entries.get(key)
            owner = entry is None
            if entry is None:
                entry = self._entries[key] = Future()
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if owner:
            try:
                entry.set_result(self._fn(key))
            except BaseException as err:
                entry.set_exception(err)
                with self._lock:  # a later request tries again (and fails with its own message)
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                raise
        return entry.result()


class TargetFeatures:
    """A feature function's output for the target of every row of consecutive chunks, computed once
    per distinct target: within a chunk, and across chunks for the last target of the previous one
    (pairs arrive grouped by target, so no other target recurs)."""

    def __init__(self, fn: Callable[[torch.Tensor], list[torch.Tensor]]) -> None:
        self._fn = fn
        self._last: tuple[str, list[torch.Tensor]] | None = None
        self.computed = 0  # images passed to ``fn`` (for tests and benchmarks)

    def __call__(self, images: torch.Tensor, targets: Sequence[str]) -> list[torch.Tensor]:
        """Per-row features of ``images`` (row i shows ``targets[i]``), as ``fn(images)`` would give."""
        keys = list(dict.fromkeys(targets))  # distinct targets, in order of first appearance
        carried = self._last if self._last is not None and self._last[0] in keys else None
        order = [carried[0]] if carried is not None else []
        parts = [carried[1]] if carried is not None else []
        fresh = [k for k in keys if k not in order]
        if fresh:
            rows = torch.tensor([targets.index(k) for k in fresh], device=images.device)
            parts.append(self._fn(images.index_select(0, rows)))
            self.computed += len(fresh)
        order += fresh
        pos = {k: i for i, k in enumerate(order)}
        layers = [torch.cat(chunks) if len(chunks) > 1 else chunks[0] for chunks in zip(*parts, strict=True)]
        last = pos[targets[-1]]
        self._last = (targets[-1], [f[last : last + 1].clone() for f in layers])
        where = torch.tensor([pos[t] for t in targets], device=images.device)
        # the layout of what fn returns (LPIPS: channels_last), which index_select would not keep
        return [f.index_select(0, where).contiguous(memory_format=_layout(f)) for f in layers]


def _layout(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
