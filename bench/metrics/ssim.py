"""SSIM exactly as scikit-image's ``structural_similarity`` computes it, batched in torch.

The reference scripts pass float32 arrays, so scikit-image works in float32: each separable
filter pass (scipy.ndimage) yields float32, the SSIM map is formed in float32 and averaged in
float64 over the interior (a border of ``(win - 1) // 2`` px is cropped), channel means are
stored as float32 and averaged. We follow that arithmetic expression by expression. Because the
border is cropped, "valid" filtering gives exactly the kept pixels, so ndimage's reflect padding
never matters. The filters are banded float64 matmuls (BLAS; faster here than conv2d) rounded
to float32 after each pass, reproducing ndimage's rounding, so the per-image SSIM matches
scikit-image to ~1e-9 relative (tests require 1e-6). Float32 filtering would be ~2.5x faster
but misses 1e-6 on noisy images (cancellation in E[x^2] - E[x]^2 at the x255 scale).

Variants (names in README.md):
- ``w51``: uniform 51x51 window, sample covariance (NP/(NP-1)), data_range given (1 on [0, 1]);
- ``g<sigma>_dr``: Gaussian window (truncate 3.5: 11x11 for sigma 1.5, 9x9 for 1.2), population
  covariance, on images x255, data_range = max - min of each *predicted* image (GFLA lineage).
A predicted image with max == min gives C1 = C2 = 0 and 0/0 in the reference; we return NaN for
that image and the engine reports it as undefined (never averaged in silently).
"""

from __future__ import annotations

import functools
import math

import torch

K1, K2 = 0.01, 0.03
TRUNCATE = 3.5


def gaussian_radius(sigma: float) -> int:
    return int(TRUNCATE * sigma + 0.5)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = gaussian_radius(sigma)
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    phi = torch.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


@functools.lru_cache(maxsize=32)
def _band(n: int, win: int, sigma: float | None) -> torch.Tensor:
    """(n - win + 1, n) float64 matrix whose rows hold the window: a "valid" 1-D filter as a matmul."""
    k = _gauss_kernel(sigma) if sigma is not None else torch.full((win,), 1.0 / win, dtype=torch.float64)
    m = n - win + 1
    band = torch.zeros(m, n, dtype=torch.float64)
    rows = torch.arange(m)
    for i in range(win):
        band[rows, rows + i] = k[i]
    return band


def _filter_valid(x: torch.Tensor, win: int, sigma: float | None) -> torch.Tensor:
    """Valid separable filter of (N, H, W) float32 along H then W, as ndimage does it.

    Each pass accumulates in float64 (BLAS) and is rounded to float32, like ndimage's
    double-buffered 1-D passes writing into a float32 output.
    """
    kh = _band(x.shape[1], win, sigma)
    kw = _band(x.shape[2], win, sigma).T
    y = torch.matmul(kh, x.to(torch.float64)).to(torch.float32)
    return torch.matmul(y.to(torch.float64), kw).to(torch.float32)


def ssim(
    gt: torch.Tensor,
    pred: torch.Tensor,
    *,
    win_size: int | None = None,
    gaussian_sigma: float | None = None,
    data_range: float | torch.Tensor = 1.0,
    sample_covariance: bool = True,
) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) float32 batches; returns float64 (B,).

    Equals ``structural_similarity(gt[i], pred[i], channel_axis=0, ...)`` with the same
    arguments, cast through float32 as scikit-image returns it for float32 input.
    ``data_range`` may be a (B,) tensor (per-image ranges).
    """
    gt = gt.to(torch.float32)
    pred = pred.to(torch.float32)
    if gt.shape != pred.shape or gt.dim() != 4:
        raise ValueError(
            f"ssim needs two (B, C, H, W) batches of equal shape, got {gt.shape} and {pred.shape}"
        )
    b, c, h, w = gt.shape
    if gaussian_sigma is not None:
        win = 2 * gaussian_radius(gaussian_sigma) + 1
    else:
        win = int(win_size or 7)
    if win > h or win > w or win % 2 == 0:
        raise ValueError(f"SSIM window {win} needs an odd size <= the image size {h}x{w}")
    n_pix = win * win
    cov_norm = n_pix / (n_pix - 1) if sample_covariance else 1.0

    x = gt.reshape(b * c, h, w)
    y = pred.reshape(b * c, h, w)
    # One batched filter call for the five maps (fewer, larger BLAS calls).
    maps = _filter_valid(torch.cat([x, y, x * x, y * y, x * y]), win, gaussian_sigma)
    ux, uy, uxx, uyy, uxy = maps.chunk(5)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)

    r = torch.as_tensor(data_range, dtype=torch.float32)
    if r.dim() == 0:
        c1 = ((K1 * r) ** 2).expand(b * c).view(-1, 1, 1)
        c2 = ((K2 * r) ** 2).expand(b * c).view(-1, 1, 1)
    else:
        r = r.view(b, 1).expand(b, c).reshape(-1, 1, 1)
        c1, c2 = (K1 * r) ** 2, (K2 * r) ** 2
    a1 = 2 * ux * uy + c1
    a2 = 2 * vxy + c2
    b1 = ux**2 + uy**2 + c1
    b2 = vx + vy + c2
    s = (a1 * a2) / (b1 * b2)
    per_channel = s.to(torch.float64).mean(dim=(1, 2)).to(torch.float32).view(b, c)
    # scikit-image stores channel means in a float32 array and averages them (float32 result).
    return per_channel.mean(dim=1).to(torch.float64)


def ssim_w51(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """CFLD/GFLA ``ssim``: uniform 51x51, data_range 1, sample covariance, on [0, 1] float32."""
    return ssim(gt, pred, win_size=51, data_range=1.0, sample_covariance=True)


def ssim_gauss_dr(gt: torch.Tensor, pred: torch.Tensor, sigma: float) -> torch.Tensor:
    """GFLA-lineage ``ssim_256``: images x255 (float32), Gaussian sigma, data_range = pred max - min."""
    gt255 = gt.to(torch.float32) * 255.0
    pred255 = pred.to(torch.float32) * 255.0
    flat = pred255.reshape(pred255.shape[0], -1)
    dr = flat.amax(dim=1) - flat.amin(dim=1)
    out = ssim(gt255, pred255, gaussian_sigma=sigma, data_range=dr, sample_covariance=False)
    return torch.where(dr > 0, out, torch.full_like(out, math.nan))
