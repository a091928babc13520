"""Precision, recall, density and coverage (Naeem et al., ICML 2020), chunked.

The definitions of the authors' package ``prdc`` (clovaai, ``prdc/prdc.py``, ``compute_prdc``),
with ``k = 5`` as in the paper and dgm-eval: a point's radius is the Euclidean distance to its
k-th nearest neighbour within its own set (the (k+1)-th smallest distance, the point itself
being the first);

- precision: share of fake points within the radius of at least one real point;
- recall: share of real points within the radius of at least one fake point;
- density: mean over fake points of (number of real balls containing it) / k;
- coverage: share of real points whose nearest fake point lies within the real point's radius.

All comparisons are strict ``<`` as in ``prdc``. ``prdc`` holds three full distance matrices
(n_real^2 + n_fake^2 + n_real * n_fake floats: 1.8 GB at 8,570 x 8,570 in float64); here
distances are computed a block of rows at a time against the whole other set, in float64, and
reduced at once. A block holds at most ``block_bytes`` (default 128 MB) of distances, i.e.
``block_bytes / (8 * n_columns)`` rows (~1,950 rows at 8,570 columns); one block is alive at a
time, with boolean masks an eighth of its size, so the extra memory is ~0.15 GB whatever the set
sizes, plus the two feature matrices in float64 (2 x 140 MB at 8,570 x 2,048): measured peak growth
~0.55 GB at 8,570 x 8,570 x 2,048 (benchmarks/new_metrics_cost.py; prdc itself: 1.8 GB).
Squared distances are compared (same order as distances, without a square root's rounding); a
point's distance to itself is exactly 0, as sklearn's ``pairwise_distances`` sets it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.errors import DataError

NEAREST_K = 5  # Naeem et al. 2020 and dgm-eval's default
BLOCK_BYTES = 128 << 20  # float64 distances per block; see the module doc for the memory this bounds


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int


def _as_matrix(features: np.ndarray | torch.Tensor, what: str, device: torch.device) -> torch.Tensor:
    x = features.detach() if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    if x.dim() != 2:
        raise DataError(f"PRDC: {what} features must be a (n, d) matrix, got shape {tuple(x.shape)}")
    x = x.to(device, torch.float64)
    if not torch.isfinite(x).all():
        raise DataError(f"PRDC: {what} features contain NaN or inf; recompute them")
    return x


def _sq_distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) squared Euclidean distances, ``|a|^2 + |b|^2 - 2 a.b`` clamped at 0.

    One (len(a), len(b)) buffer: the product is written by addmm and the norms added in place.
    """
    d = torch.addmm((a * a).sum(1, keepdim=True), a, b.T, beta=1.0, alpha=-2.0)
    return d.add_(b_sq.unsqueeze(0)).clamp_min_(0.0)


def _rows_per_block(n_columns: int, block_bytes: int) -> int:
    return max(1, block_bytes // (8 * n_columns))


def knn_radii_sq(x: torch.Tensor, nearest_k: int = NEAREST_K, block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """Squared distance of each row of ``x`` to its ``nearest_k``-th nearest other row (blockwise)."""
    n = x.shape[0]
    chunk = _rows_per_block(n, block_bytes)
    x_sq = (x * x).sum(1)
    out = torch.empty(n, dtype=torch.float64, device=x.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d = _sq_distances(x[start:stop], x, x_sq)
        rows = torch.arange(stop - start, device=x.device)
        d[rows, rows + start] = 0.0  # self-distance exactly 0, as sklearn's pairwise_distances
        # the (k+1)-th smallest; topk needs no block-sized copy (kthvalue makes two) and is ~10x faster
        out[start:stop] = torch.topk(d, nearest_k + 1, dim=1, largest=False, sorted=True).values[:, -1]
        del d  # freed before the next block is allocated: one block alive, not two
    return out


def prdc(
    real_features: np.ndarray | torch.Tensor,
    fake_features: np.ndarray | torch.Tensor,
    nearest_k: int = NEAREST_K,
    block_bytes: int = BLOCK_BYTES,
    device: torch.device | str = "cpu",
) -> PRDCResult:
    """Precision, recall, density, coverage of ``fake`` (n_fake, d) against ``real`` (n_real, d)."""
    device = torch.device(device)
    real = _as_matrix(real_features, "real", device)
    fake = _as_matrix(fake_features, "fake", device)
    if real.shape[1] != fake.shape[1]:
        raise DataError(
            f"PRDC: the feature sets have different dimensions ({real.shape[1]} vs {fake.shape[1]}); "
            "they come from different feature extractors"
        )
    for what, x in (("real", real), ("fake", fake)):
        if x.shape[0] <= nearest_k:
            raise DataError(
                f"PRDC with k={nearest_k} needs more than {nearest_k} {what} images; got {x.shape[0]}"
            )
    r_real = knn_radii_sq(real, nearest_k, block_bytes)
    r_fake = knn_radii_sq(fake, nearest_k, block_bytes)
    real_sq = (real * real).sum(1)
    n_real, n_fake = real.shape[0], fake.shape[0]
    in_real_balls = torch.zeros(
        n_fake, dtype=torch.int64, device=device
    )  # per fake: real balls containing it
    real_recalled = torch.zeros(n_real, dtype=torch.bool, device=device)  # per real: inside some fake ball
    nearest_fake = torch.full((n_real,), float("inf"), dtype=torch.float64, device=device)
    chunk = _rows_per_block(n_real, block_bytes)
    for start in range(0, n_fake, chunk):
        stop = min(start + chunk, n_fake)
        d = _sq_distances(fake[start:stop], real, real_sq)  # (fake chunk, n_real)
        in_real_balls[start:stop] = torch.count_nonzero(d < r_real.unsqueeze(0), dim=1)  # no int64 copy
        real_recalled |= (d < r_fake[start:stop].unsqueeze(1)).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
        del d
    return PRDCResult(
        precision=float((in_real_balls > 0).double().mean()),
        recall=float(real_recalled.double().mean()),
        density=float(in_real_balls.double().mean() / nearest_k),
        coverage=float((nearest_fake < r_real).double().mean()),
        nearest_k=nearest_k,
    )
