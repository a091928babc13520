"""PSNR as scikit-image's ``peak_signal_noise_ratio`` computes it for float32 inputs.

The difference is squared in float32, the mean taken in float64, then
``10 log10(data_range^2 / mse)``. Identical images give mse = 0 and an infinite PSNR in the
reference; we return +inf for that image and the engine reports it as undefined rather than
letting one image turn the mean into inf.
"""

from __future__ import annotations

import torch


def psnr(gt: torch.Tensor, pred: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR of (B, C, H, W) batches (float32 arithmetic like skimage); float64 (B,)."""
    diff = gt.to(torch.float32) - pred.to(torch.float32)
    mse = (diff * diff).reshape(diff.shape[0], -1).to(torch.float64).mean(dim=1)
    return 10 * torch.log10((data_range**2) / mse)
