"""PIDM's two absolute-error metrics (``utils/metrics.py``), per image on float32 images in [0, 1].

- ``l1``: ``mean(|gt - pred|)``;
- ``mae_sumnorm``: ``sum(|gt - pred|) / sum(gt + pred)``, which PIDM prints as "MAE" (it is not
  the usual mean absolute error, hence the name).
The differences are taken in float32 as the script does; NumPy then sums the float32 values
pairwise in float32, we sum them in float64 (the two agree to ~1e-7 relative; tests check 1e-6).
"""

from __future__ import annotations

import torch


def l1(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of (B, C, H, W) batches; float64 (B,)."""
    diff = (gt.to(torch.float32) - pred.to(torch.float32)).abs()
    return diff.reshape(diff.shape[0], -1).to(torch.float64).mean(dim=1)


def mae_sumnorm(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Per-image ``sum |gt - pred| / sum (gt + pred)``; float64 (B,)."""
    g, p = gt.to(torch.float32), pred.to(torch.float32)
    num = (g - p).abs().reshape(g.shape[0], -1).to(torch.float64).sum(dim=1)
    den = (g + p).reshape(g.shape[0], -1).to(torch.float64).sum(dim=1)
    return num / den
