"""Percentile-bootstrap 95% confidence intervals of a per-image mean (seeded, chunked)."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: np.ndarray, n_resamples: int = 1000, seed: int = 0, level: float = 0.95, chunk: int = 100
) -> tuple[float, float] | None:
    """(lo, hi) of the mean's percentile bootstrap interval; ``None`` for fewer than 2 values.

    Resamples are drawn in chunks so memory stays O(chunk * n) however many resamples are asked.
    The same seed and values always give the same interval.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < 2 or n_resamples < 1:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, np.float64)
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
