"""Fréchet distance equals pytorch-fid's; streaming statistics equal np.mean/np.cov; degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from bench.errors import DataError
from bench.metrics.bootstrap import bootstrap_ci
from bench.metrics.fid import RunningStats, frechet_distance


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n1,n2,d", [(400, 300, 64), (40, 50, 64)])  # full rank, and singular (n < d)
def test_matches_pytorch_fid(n1: int, n2: int, d: int) -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n1, d)) @ rng.standard_normal((d, d)) * 0.3 + 1.0
    b = rng.standard_normal((n2, d)) * 1.3 + 0.5
    (m1, s1), (m2, s2) = _stats(a), _stats(b)
    ref = calculate_frechet_distance(m1, s1, m2, s2)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-4)
    assert frechet_distance(m1, s1, m2, s2, method="sqrtm") == pytest.approx(ref, rel=1e-12)
    assert frechet_distance(m1, s1, m2, s2, method="eigh") == pytest.approx(ref, rel=1e-6)
    if n1 > d:  # positive definite: the Cholesky route is taken and agrees
        assert frechet_distance(m1, s1, m2, s2, method="cholesky") == pytest.approx(ref, rel=1e-8)
    else:
        with pytest.raises(DataError, match="positive definite"):
            frechet_distance(m1, s1, m2, s2, method="cholesky")


def test_analytic_cases() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 16))
    mu, sigma = _stats(x)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    delta = rng.standard_normal(16)
    assert frechet_distance(mu, sigma, mu + delta, sigma) == pytest.approx(float(delta @ delta), rel=1e-8)
    # N(0, a I) vs N(0, b I): d * (sqrt(a) - sqrt(b))^2
    a, b = 2.0, 0.5
    value = frechet_distance(np.zeros(16), a * np.eye(16), np.zeros(16), b * np.eye(16))
    assert value == pytest.approx(16 * (np.sqrt(a) - np.sqrt(b)) ** 2, rel=1e-10)


@pytest.mark.parametrize("n", [23, 203])  # below and above FLUSH_ROWS: sums added mid-stream too
@pytest.mark.parametrize("batch", [1, 3, 7, 64, 500])
def test_running_stats_equal_np_cov_for_any_batching(batch: int, n: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, 8)) * 5 + 100.0  # a large mean: one-pass sums must not cancel
    rs = RunningStats(8)
    for s in range(0, len(x), batch):
        rs.update(x[s : s + batch])
    mu, sigma = rs.finalize()
    ref_mu, ref_sigma = _stats(x)
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-12)
    np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-9, atol=1e-9)
    assert rs.n == n
    np.testing.assert_array_equal(rs.finalize()[1], sigma)  # finalize twice: nothing added again


def test_degenerate_covariances_are_never_nan() -> None:
    rs = RunningStats(4)
    rs.update(np.ones((1, 4)))
    with pytest.raises(DataError, match="at least 2"):
        rs.finalize()
    # constant features: zero covariance, finite documented value ||mu1 - mu2||^2 + tr(sigma2)
    const = RunningStats(4)
    const.update(np.full((5, 4), 0.25))
    mu1, s1 = const.finalize()
    assert np.all(s1 == 0)
    rng = np.random.default_rng(3)
    mu2, s2 = _stats(rng.standard_normal((50, 4)))
    value = frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(value)
    assert value == pytest.approx(float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s2)), rel=1e-4)
    with pytest.raises(DataError, match="NaN"):
        frechet_distance(mu1, s1 * np.nan, mu2, s2)
    with pytest.raises(DataError, match="shapes"):
        frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])


def test_bootstrap_is_seeded_and_covers_the_mean() -> None:
    rng = np.random.default_rng(4)
    v = rng.standard_normal(301)
    lo, hi = bootstrap_ci(v, n_resamples=500, seed=0)
    assert lo < v.mean() < hi
    assert (lo, hi) == bootstrap_ci(v, n_resamples=500, seed=0)
    assert (lo, hi) != bootstrap_ci(v, n_resamples=500, seed=1)
    assert bootstrap_ci(v[:1]) is None
