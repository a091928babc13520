"""Shared by the CFLD pipeline, method and training tests: a micro model and a one-thread guard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

# A micro CFLD (tiny widths, 16x16 latent of a 32x32 pixel-space image) so training runs in seconds.
MICRO_MODEL = {
    "base": "tiny",
    "gt_img_size": [32, 32],
    "swin": {"img_size": [64, 64]},
    "pose": {"img_size": [64, 64]},
    "unet": {"config": {"in_channels": 12, "out_channels": 12, "sample_size": 16}},
}


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on the small shared CPU, OpenMP oversubscription makes these tiny models'
    steps 10-50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
