"""``copy-source``: return the source image unchanged, the lower bound every method must beat.

It ignores the target pose completely, so any metric that rewards pose transfer scores it
badly; a learned method that does not clearly beat it has not learned pose transfer.
"""

from __future__ import annotations

import torch

from bench.api import InputSpec, Method, MethodInfo, PairBatch


class CopySource(Method):
    """Outputs the source image at the requested size (config ``image_size``, default 256x176)."""

    info = MethodInfo(
        name="copy-source",
        description="returns the source image unchanged (lower bound: no pose transfer at all)",
    )

    @property
    def inputs(self) -> InputSpec:
        size = self.config.get("image_size", (256, 176))
        return InputSpec(image_size=(int(size[0]), int(size[1])))

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        # A copy, so the engine may clamp/resize in place without touching the batch.
        return batch.source_image.clone()
