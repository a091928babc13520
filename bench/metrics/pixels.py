"""The per-pair pixel metrics of a protocol (SSIM variants, PSNR, L1/MAE, plugins), on the device.

Each metric sees the view its protocol declares (``views.py``: the eval images divided by 255 in
float32, or pasted into a white 256x256 canvas first for ``pad40``), as the reference scripts feed
them; each view is made once per chunk for every metric that reads it. Images are scored a few at a
time on the CPU (the filtered maps of a whole batch would dominate peak RSS) and many at a time on
a GPU; every value is per image, so chunking never changes a number. A metric that declares its
target-side work (``targets.target_part``: SSIM's filtered target) gets it computed once per target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from bench.metrics.device import chunk_size
from bench.metrics.protocols import Protocol, ScoredMetric
from bench.metrics.targets import TargetFeatures, target_part_of
from bench.metrics.views import get_view

# Images per call on the CPU. Fewer, larger filter calls cost less per pair (each call dispatches its
# filters to the threads right after a torch op); the peak RSS does not move up to 8. 571 pairs of
# cfld-256 (the engine calling once per batch of 32), alternated: pixel metrics 5.4-5.9 s at 4,
# 4.2-5.1 s at 8, 4.1-4.5 s at 16 (with 50 MB more peak RSS).
CPU_CHUNK = 8
GPU_CHUNK = 128


class PixelScorer:
    """The pixel metrics among ``scored``, their functions and settings resolved once."""

    def __init__(self, protocol: Protocol, scored: Sequence[ScoredMetric]) -> None:
        self.items: list[tuple[str, str, Callable[..., torch.Tensor], dict[str, Any]]] = [
            (s.result_name, s.view, s.metric.function(), s.metric.settings(protocol)) for s in scored
        ]
        # Per metric with a target part: its per-target cache (pairs arrive grouped by target).
        self.target_parts: dict[str, TargetFeatures] = {}
        for name, _view, fn, settings in self.items:
            part = target_part_of(fn)
            if part is not None:
                self.target_parts[name] = TargetFeatures(lambda gt, p=part, s=settings: p(gt, **s))

    @property
    def names(self) -> list[str]:
        return [name for name, *_ in self.items]

    def score(
        self,
        gen_u8: torch.Tensor,
        gt_u8: torch.Tensor,
        out: dict[str, np.ndarray],
        rows: np.ndarray,
        targets: Sequence[str] | None = None,
    ) -> None:
        """Every pixel metric for a batch of eval views; image i's values go to row ``rows[i]`` of ``out``.

        ``targets``: the name of each row's target image (consecutive calls see the pairs grouped by
        target), for the per-target caches; without it every pair's target work is done anew.
        """
        step = chunk_size(gen_u8.device, CPU_CHUNK, GPU_CHUNK)
        for i in range(0, gen_u8.shape[0], step):
            j = min(i + step, gen_u8.shape[0])
            self._chunk(gen_u8[i:j], gt_u8[i:j], out, rows[i:j], None if targets is None else targets[i:j])

    def _chunk(
        self,
        gen_u8: torch.Tensor,
        gt_u8: torch.Tensor,
        out: dict[str, np.ndarray],
        rows: np.ndarray,
        targets: Sequence[str] | None,
    ) -> None:
        views: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name, view, fn, settings in self.items:
            if view not in views:
                make = get_view(view).make
                views[view] = make(gen_u8), make(gt_u8)
            g, t = views[view]
            cache = self.target_parts.get(name)
            given = {"target": cache(t, targets)} if cache is not None and targets is not None else {}
            out[name][rows] = fn(t, g, **given, **settings).cpu().numpy()
