"""SSIM exactly as scikit-image's ``structural_similarity`` computes it, batched in torch on any device.

scikit-image filters each channel with ``scipy.ndimage`` (``uniform_filter`` or
``gaussian_filter``, mode ``reflect``), forms the SSIM map, averages it over the interior (a
border of ``(win - 1) // 2`` px is cropped) and averages the channels. We compute the same
quantities with torch tensor operations, so the same code runs on the CPU and on a GPU:

- **Border handling.** Every interior pixel's window lies inside the image (the crop equals the
  window radius), so the reflected border never reaches a value that is averaged: filtering only
  the "valid" region gives exactly the cropped maps, with no padding at all.
- **Filter arithmetic.** ndimage filters one axis at a time (rows, then columns), accumulating in
  float64 and storing each pass in the array's dtype. We do the same: each 1-D pass runs in
  float64 (a running-sum box for the uniform window, as ndimage's ``uniform_filter1d``; the
  centre tap plus symmetric pairs for the Gaussian, as its ``correlate1d``, with ndimage's
  normalised ``exp(-x^2 / 2 sigma^2)`` taps, truncate 3.5) and is cast back to the working dtype.
- **Where the filters run.** On a GPU, those torch passes. On the CPU, ``scipy.ndimage`` itself
  (the reference's own C loops: one fused pass per axis, ~5x faster here than torch's op-by-op
  passes, and bit-identical to the reference by construction). Everything around the filters
  (products, SSIM map, means, data ranges, dtypes) is the same torch code on both; the torch
  filters are tested on the CPU against ndimage and end to end (``torch_filters()`` forces them).
- **The target's side once.** Two of a pair's five filtered maps (the GT image and its square) and
  what follows from them alone (``ux * ux``, the variance) depend on the GT image only:
  ``ssim_target_maps`` computes them, ``ssim(..., target=...)`` takes them, and the engine computes
  them once per target image (``targets.target_part``). The arithmetic is the same either way.
- **Working dtype.** ``float32``: scikit-image >= 0.19 on the float32 arrays the CFLD/GFLA/DPTN
  scripts pass (the map in float32, its mean in float64, channel means stored as float32).
  ``float64``: scikit-image 0.17.2 (PIDM's pin), which converts every input to float64 first.

Variants (names in README.md):
- ``w51``: uniform 51x51 window, sample covariance (NP/(NP-1)), data_range given (1 on [0, 1]);
- ``g<sigma>_dr``: Gaussian window (11x11 for sigma 1.5, 9x9 for 1.2), population covariance,
  on images x255, data_range = max - min of each *predicted* image (GFLA lineage).
A predicted image with max == min gives C1 = C2 = 0 and 0/0 in the reference; we return NaN for
that image and the engine reports it as undefined (never averaged in silently).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from bench.metrics.targets import target_part

K1, K2 = 0.01, 0.03
TRUNCATE = 3.5
TASKS_PER_THREAD = 4  # filter tasks per thread on the CPU (see _ndimage_valid)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def gaussian_radius(sigma: float) -> int:
    return int(TRUNCATE * sigma + 0.5)


def gaussian_taps(sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """ndimage's Gaussian kernel: ``exp(-0.5 / sigma^2 * x^2)`` over ``[-r, r]``, normalised, float64."""
    radius = gaussian_radius(sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    phi = torch.exp(-0.5 / (sigma * sigma) * x * x)
    return phi / phi.sum()


def _box_valid(x: torch.Tensor, win: int, dim: int) -> torch.Tensor:
    """Mean over ``win`` consecutive values along ``dim`` (valid positions only), float64 accumulation."""
    c = torch.cumsum(x.to(torch.float64), dim)
    length = x.shape[dim] - win + 1
    head = c.narrow(dim, win - 1, length)
    tail = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c.narrow(dim, 0, length - 1)], dim)
    return ((head - tail) / win).to(x.dtype)


def _taps_valid(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Symmetric correlation along ``dim`` (valid positions), centre tap then pairs, float64 accumulation."""
    r = (len(taps) - 1) // 2
    x64 = x.to(torch.float64)
    length = x.shape[dim] - 2 * r
    out = x64.narrow(dim, r, length) * taps[r]
    for j in range(1, r + 1):
        out.add_(x64.narrow(dim, r + j, length) + x64.narrow(dim, r - j, length), alpha=taps[r + j])
    return out.to(x.dtype)


_FORCE_TORCH: contextvars.ContextVar[bool] = contextvars.ContextVar("ssim_torch_filters", default=False)


@contextlib.contextmanager
def torch_filters() -> Iterator[None]:
    """Run the torch filters (the GPU's) on the CPU too, inside the block: for tests and checks."""
    token = _FORCE_TORCH.set(True)
    try:
        yield
    finally:
        _FORCE_TORCH.reset(token)


def _ndimage_valid(x: torch.Tensor, win: int, sigma: float | None) -> torch.Tensor:
    """The reference's call, ``uniform_filter``/``gaussian_filter`` per map (size/sigma 0 on the stack
    axis, which ndimage skips), then the interior crop; output in the input's dtype.

    ndimage runs one thread and releases the GIL, so the maps are split between torch's number of
    threads (each map is filtered on its own: the split changes no value). On 2 cores this halves the
    filters' time on an idle machine (``benchmarks/decode_overlap.py`` measures it). Right after a
    torch operation, though, torch's OpenMP threads spin for several milliseconds and hold a core:
    an even split then waits for the thread that shares its core. So the maps go out as
    ``TASKS_PER_THREAD`` tasks per thread, taken as threads free up (2 cores, 36 maps filtered just
    after a torch op: uniform 51 9.95 -> 8.0-8.4 ms, Gaussian 14.6 -> 12.1-13.3 ms with 6-12 tasks).
    """
    from scipy import ndimage

    arr = x.detach().contiguous().numpy()
    out = np.empty_like(arr)

    def run(lo: int, hi: int) -> None:
        if sigma is not None:
            ndimage.gaussian_filter(
                arr[lo:hi], sigma=(0.0, sigma, sigma), truncate=TRUNCATE, output=out[lo:hi]
            )
        else:
            ndimage.uniform_filter(arr[lo:hi], size=(1, win, win), output=out[lo:hi])

    threads = torch.get_num_threads()
    parts = max(1, min(threads * TASKS_PER_THREAD if threads > 1 else 1, arr.shape[0]))
    bounds = [arr.shape[0] * k // parts for k in range(parts + 1)]
    if parts == 1:
        run(0, arr.shape[0])
    else:
        list(_filter_pool(threads).map(run, bounds[:-1], bounds[1:]))
    pad = (win - 1) // 2
    return torch.from_numpy(out)[:, pad : arr.shape[1] - pad, pad : arr.shape[2] - pad]


@functools.cache
def _filter_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ssim-filter")


def _filter_valid(x: torch.Tensor, win: int, sigma: float | None) -> torch.Tensor:
    """scikit-image's filter of each (H, W) map of (N, H, W), rows then columns, cropped to the interior."""
    if x.device.type == "cpu" and not _FORCE_TORCH.get():
        return _ndimage_valid(x, win, sigma)
    taps = gaussian_taps(sigma).tolist() if sigma is not None else None
    for dim in (1, 2):
        x = _box_valid(x, win, dim) if taps is None else _taps_valid(x, taps, dim)
    return x


def _window(gaussian_sigma: float | None, win_size: int | None) -> int:
    return 2 * gaussian_radius(gaussian_sigma) + 1 if gaussian_sigma is not None else int(win_size or 7)


def _cov_norm(win: int, sample_covariance: bool) -> float:
    """NP / (NP - 1) for the sample covariance, 1 for the population one."""
    return win * win / (win * win - 1) if sample_covariance else 1.0


def ssim_target_maps(
    gt: torch.Tensor,
    *,
    win_size: int | None = None,
    gaussian_sigma: float | None = None,
    sample_covariance: bool = True,
    dtype: str = "float32",
) -> list[torch.Tensor]:
    """What SSIM computes from the GT image alone: ``[ux, vx, ux * ux]`` per image, each (B, C, h', w').

    ``ux`` is the filtered image, ``vx = cov_norm * (uxx - ux * ux)`` its filtered variance: two of
    the five filters of a pair. A target shared by several pairs needs them once (``ssim(...,
    target=...)``; the engine caches them per target like its other target-side work).
    """
    work = DTYPES[dtype]
    x = gt.to(work)
    if x.dim() != 4:
        raise ValueError(f"ssim needs (B, C, H, W) batches, got {tuple(gt.shape)}")
    b, c, h, w = x.shape
    win = _window(gaussian_sigma, win_size)
    if win > h or win > w or win % 2 == 0:
        raise ValueError(f"SSIM window {win} needs an odd size <= the image size {h}x{w}")
    x = x.reshape(b * c, h, w)
    stack = torch.empty((2 * b * c, h, w), dtype=work, device=x.device)
    stack[: b * c] = x
    torch.mul(x, x, out=stack[b * c :])
    ux, uxx = _filter_valid(stack, win, gaussian_sigma).chunk(2)
    del stack
    uxsq = torch.mul(ux, ux)
    vx = uxx.sub_(uxsq)
    cov_norm = _cov_norm(win, sample_covariance)
    if cov_norm != 1.0:  # x * 1.0 == x exactly
        vx.mul_(cov_norm)
    return [m.reshape(b, c, *m.shape[1:]) for m in (ux, vx, uxsq)]


def ssim(
    gt: torch.Tensor,
    pred: torch.Tensor,
    *,
    win_size: int | None = None,
    gaussian_sigma: float | None = None,
    data_range: float | torch.Tensor = 1.0,
    sample_covariance: bool = True,
    dtype: str = "float32",
    target: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) batches in ``dtype`` arithmetic; returns float64 (B,) on their device.

    Equals ``structural_similarity(gt[i], pred[i], channel_axis=0, ...)`` with the same
    arguments, for inputs of that dtype. ``data_range`` may be a (B,) tensor (per-image ranges).
    ``target``: ``ssim_target_maps(gt, ...)`` with the same settings, computed earlier (the
    values are the same either way).
    """
    if gt.shape != pred.shape or gt.dim() != 4:
        raise ValueError(
            f"ssim needs two (B, C, H, W) batches of equal shape, got {tuple(gt.shape)} and {tuple(pred.shape)}"
        )
    settings = {
        "win_size": win_size,
        "gaussian_sigma": gaussian_sigma,
        "sample_covariance": sample_covariance,
    }
    if target is None:
        target = ssim_target_maps(gt, dtype=dtype, **settings)
    work = DTYPES[dtype]
    b, c, h, w = gt.shape
    bc = b * c
    win = _window(gaussian_sigma, win_size)
    x = gt.to(work).reshape(bc, h, w)
    y = pred.to(work).reshape(bc, h, w)
    stack = torch.empty((3 * bc, h, w), dtype=work, device=gt.device)
    stack[:bc] = y
    torch.mul(y, y, out=stack[bc : 2 * bc])
    torch.mul(x, y, out=stack[2 * bc :])
    maps = _filter_valid(stack, win, gaussian_sigma)
    del stack  # the filters wrote new buffers (owned here: the arithmetic below writes into them)
    cov_norm = _cov_norm(win, sample_covariance)
    c1, c2 = _stabilisers(data_range, b, c, work, gt.device)
    ux, vx, uxsq = (m.reshape(bc, *m.shape[2:]) for m in target)
    return _ssim_from_maps(ux, vx, uxsq, maps, cov_norm, c1, c2).view(b, c).mean(dim=1).to(torch.float64)


def _stabilisers(
    data_range: float | torch.Tensor, b: int, c: int, work: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """C1 and C2 per map, shaped (B * C, 1, 1)."""
    r = torch.as_tensor(data_range, device=device)
    # float32: the range is a float32 scalar and C1, C2 float32 (NumPy 2 keeps float32 * Python float);
    # float64 (scikit-image 0.17): the float32 range of the script's array enters float64 arithmetic.
    r = r.to(torch.float32).to(work)
    if r.dim() == 0:
        return ((K1 * r) ** 2).expand(b * c).view(-1, 1, 1), ((K2 * r) ** 2).expand(b * c).view(-1, 1, 1)
    r = r.view(b, 1).expand(b, c).reshape(-1, 1, 1)
    return (K1 * r) ** 2, (K2 * r) ** 2


def _ssim_from_maps(
    ux: torch.Tensor,
    vx: torch.Tensor,
    uxsq: torch.Tensor,
    maps: torch.Tensor,
    cov_norm: float,
    c1: torch.Tensor,
    c2: torch.Tensor,
) -> torch.Tensor:
    """Mean SSIM per map from the target's ``ux, vx, ux * ux`` and the pair's filtered ``uy, uyy, uxy``
    (``maps``), computed in ``maps``; the target's tensors are only read (they serve other pairs too).

    scikit-image's expressions, each operation in its order and dtype, so every value is the same
    (only a sum's two operands may swap, which IEEE addition does not notice):
    ``vx = cov_norm * (uxx - ux * ux)`` (likewise vy, vxy), ``A1 = 2 * ux * uy + C1``,
    ``A2 = 2 * vxy + C2``, ``B1 = ux ** 2 + uy ** 2 + C1``, ``B2 = vx + vy + C2``,
    ``S = (A1 * A2) / (B1 * B2)``. Done in the filters' output buffer with two temporaries: the ~15
    full-size temporaries of the plain expressions cost as much as the filters themselves on a CPU.
    """
    uy, uyy, uxy = maps.chunk(3)
    t = torch.mul(uy, uy)
    vy = uyy.sub_(t)
    b1 = t.add_(uxsq).add_(c1)
    p = torch.mul(ux, uy)
    vxy = uxy.sub_(p)
    a1 = torch.mul(ux, 2, out=p).mul_(uy).add_(c1)
    if cov_norm != 1.0:  # x * 1.0 == x exactly
        vy.mul_(cov_norm)
        vxy.mul_(cov_norm)
    a2 = vxy.mul_(2).add_(c2)
    b2 = vy.add_(vx).add_(c2)
    s = a1.mul_(a2).div_(b1.mul_(b2))
    # scikit-image averages the map in float64 and stores the channel means in the working dtype.
    # contiguous: a float64 map is still a view of the cropped buffer, and a reduction's summation
    # order follows the memory layout (the plain expressions produced a contiguous map).
    return s.to(torch.float64).contiguous().mean(dim=(1, 2)).to(s.dtype)


def _w51_target(gt: torch.Tensor, dtype: str = "float32") -> list[torch.Tensor]:
    return ssim_target_maps(gt, win_size=51, sample_covariance=True, dtype=dtype)


@target_part(_w51_target)
def ssim_w51(
    gt: torch.Tensor, pred: torch.Tensor, dtype: str = "float32", target: list[torch.Tensor] | None = None
) -> torch.Tensor:
    """CFLD/GFLA ``ssim``: uniform 51x51, data_range 1, sample covariance, on [0, 1] images."""
    return ssim(gt, pred, win_size=51, data_range=1.0, sample_covariance=True, dtype=dtype, target=target)


def _gauss_dr_target(gt: torch.Tensor, sigma: float, dtype: str = "float32") -> list[torch.Tensor]:
    gt255 = gt.to(torch.float32) * 255.0
    return ssim_target_maps(gt255, gaussian_sigma=sigma, sample_covariance=False, dtype=dtype)


@target_part(_gauss_dr_target)
def ssim_gauss_dr(
    gt: torch.Tensor,
    pred: torch.Tensor,
    sigma: float,
    dtype: str = "float32",
    target: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """GFLA-lineage ``ssim_256``: images x255 (in float32, as the scripts multiply), Gaussian sigma,
    data_range = max - min of each predicted image (a float32 value)."""
    gt255 = gt.to(torch.float32) * 255.0
    pred255 = pred.to(torch.float32) * 255.0
    flat = pred255.reshape(pred255.shape[0], -1)
    dr = flat.amax(dim=1) - flat.amin(dim=1)
    out = ssim(
        gt255,
        pred255,
        gaussian_sigma=sigma,
        data_range=dr,
        sample_covariance=False,
        dtype=dtype,
        target=target,
    )
    return torch.where(dr > 0, out, torch.full_like(out, math.nan))
