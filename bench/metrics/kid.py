"""Kernel Inception Distance (Bińkowski et al. 2018) as torch-fidelity computes it.

KID is the unbiased estimate of the squared MMD between two feature sets under the cubic
polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets. Step for step
torch-fidelity's ``kid_features_to_metric`` (``torch_fidelity/metric_kid.py``, defaults
``kid_subsets=100``, ``kid_subset_size=1000``, ``rng_seed=2020``):

- one ``np.random.RandomState(seed)``; per subset, ``rng.choice(n1, m, replace=False)`` rows of
  the first set, then ``rng.choice(n2, m, replace=False)`` rows of the second (this order);
- per subset ``mmd2 = (sum K_XX - tr K_XX + sum K_YY - tr K_YY) / (m (m - 1)) - 2 sum K_XY / m^2``;
- the result is the mean and the population std (``np.std``, ddof 0) of the subset values.

One deviation, stated: torch-fidelity refuses sets smaller than ``subset_size``; here the subset
size is ``min(subset_size, n1, n2)`` (the 144-pair embedded set still gets a KID; the result
records the size used). Where both sets have at least ``subset_size`` rows the numbers are
torch-fidelity's (tests/metrics/test_kid.py runs both on the same features). A set with no more
rows than the subset size is used whole in every subset, so the subset std then measures only
the other set's sampling, and is 0 (to rounding) when both sets are that small: report it as
such, not as an uncertainty of the small set. torch-fidelity's ``input1`` is the generated set:
pass generated features first and reference features second to get its numbers.

The kernel sums are float64 (torch-fidelity keeps its features' dtype, float32 for its own
extractors; float64 inputs give its numbers to ~1e-12). Memory: the two feature matrices as
given, plus three m x m float64 kernels and the 2 x m x d float64 subset rows per subset
(1000 x 1000 x 8 B x 3 + 2 x 1000 x 2048 x 8 B = 57 MB at the defaults); nothing grows with n.
The kernel matmuls run on ``device`` (a GPU does them in float64 too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import DataError

SUBSETS = 100  # torch-fidelity's kid_subsets
SUBSET_SIZE = 1000  # torch-fidelity's kid_subset_size
SEED = 2020  # torch-fidelity's rng_seed
DEGREE = 3  # cubic polynomial kernel; gamma = 1/d and coef0 = 1, as torch-fidelity's defaults


@dataclass(frozen=True)
class KIDResult:
    """KID over ``subsets`` random subsets of ``subset_size`` rows from each set."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def _as_matrix(features: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    arr = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    if arr.ndim != 2:
        raise DataError(f"KID: {what} features must be a (n, d) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"KID: {what} features contain NaN or inf; recompute them")
    return arr


def polynomial_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 of two equally sized float64 sets under ``(x.y / d + 1)^3``."""
    m, d = x.shape
    gamma = 1.0 / d

    def kernel_sums(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of all entries, trace) of (a b^T gamma + 1)^3, built in place (one m x m buffer)."""
        k = (a @ b.T).mul_(gamma).add_(1.0)
        k = k * k * k  # two multiplies: ~2x faster than a float64 pow on the CPU, same value
        return k.sum(), k.diagonal().sum()

    (s_xx, t_xx), (s_yy, t_yy), (s_xy, _) = kernel_sums(x, x), kernel_sums(y, y), kernel_sums(x, y)
    return float(((s_xx - t_xx) + (s_yy - t_yy)) / (m * (m - 1)) - 2.0 * s_xy / (m * m))


def kid(
    features_1: np.ndarray | torch.Tensor,
    features_2: np.ndarray | torch.Tensor,
    subsets: int = SUBSETS,
    subset_size: int = SUBSET_SIZE,
    seed: int = SEED,
    device: torch.device | str = "cpu",
) -> KIDResult:
    """KID between two feature sets (n1, d) and (n2, d); torch-fidelity's subsets and seed.

    ``features_1`` is torch-fidelity's ``input1`` (the order fixes which rows each subset draws;
    KID itself is symmetric in distribution, not in the sampled value). Any float dtype; the
    subset rows are converted to float64 on ``device``.
    """
    f1, f2 = _as_matrix(features_1, "first"), _as_matrix(features_2, "second")
    if f1.shape[1] != f2.shape[1]:
        raise DataError(
            f"KID: the feature sets have different dimensions ({f1.shape[1]} vs {f2.shape[1]}); "
            "they come from different feature extractors"
        )
    n1, n2 = f1.shape[0], f2.shape[0]
    m = min(subset_size, n1, n2)
    if m < 2:
        raise DataError(f"KID needs at least 2 images in each set; got {n1} and {n2}")
    if subsets < 1:
        raise ValueError(f"KID: subsets must be at least 1, got {subsets}")
    device = torch.device(device)
    rng = np.random.RandomState(seed)
    values = np.zeros(subsets)
    for i in range(subsets):
        rows_1 = rng.choice(n1, m, replace=False)
        rows_2 = rng.choice(n2, m, replace=False)
        x = torch.from_numpy(np.ascontiguousarray(f1[rows_1])).to(device, torch.float64)
        y = torch.from_numpy(np.ascontiguousarray(f2[rows_2])).to(device, torch.float64)
        values[i] = polynomial_mmd2_unbiased(x, y)
    return KIDResult(mean=float(np.mean(values)), std=float(np.std(values)), subsets=subsets, subset_size=m)
