"""KID equals torch-fidelity's ``kid_features_to_metric`` on the same features, subsets and seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

from bench.errors import DataError
from bench.metrics.kid import SEED, kid


def _features(n: int, d: int, shift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * 1.1 + shift


def _reference(f1: np.ndarray, f2: np.ndarray, subsets: int, subset_size: int, seed: int = SEED) -> dict:
    return kid_features_to_metric(
        torch.from_numpy(f1),
        torch.from_numpy(f2),
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        rng_seed=seed,
        verbose=False,
    )


@pytest.mark.parametrize("n1,n2,subset_size", [(120, 90, 50), (64, 64, 64)])
def test_matches_torch_fidelity_float64(n1: int, n2: int, subset_size: int) -> None:
    f1, f2 = _features(n1, 32, 0.0, 1), _features(n2, 32, 0.3, 2)
    ref = _reference(f1, f2, subsets=7, subset_size=subset_size)
    ours = kid(f1, f2, subsets=7, subset_size=subset_size)
    assert ours.subset_size == subset_size and ours.subsets == 7
    assert ours.mean == pytest.approx(ref[KEY_METRIC_KID_MEAN], rel=1e-10, abs=1e-12)
    assert ours.std == pytest.approx(ref[KEY_METRIC_KID_STD], rel=1e-8, abs=1e-12)


def test_float32_features_within_float32_rounding_of_torch_fidelity() -> None:
    # torch-fidelity's own extractors give float32 features and it keeps float32 in the kernel;
    # we sum in float64, so the two agree to float32 rounding only.
    f1, f2 = _features(100, 48, 0.0, 3).astype(np.float32), _features(80, 48, 0.5, 4).astype(np.float32)
    ref = _reference(f1, f2, subsets=5, subset_size=40, seed=11)
    ours = kid(f1, f2, subsets=5, subset_size=40, seed=11)
    assert ours.mean == pytest.approx(ref[KEY_METRIC_KID_MEAN], rel=1e-4)
    assert ours.std == pytest.approx(ref[KEY_METRIC_KID_STD], rel=1e-3)


def test_small_sets_use_the_whole_set_as_subset_size() -> None:
    # torch-fidelity refuses n < subset_size; we use m = min(subset_size, n1, n2), i.e. its number
    # with kid_subset_size=m.
    f1, f2 = _features(30, 16, 0.0, 5), _features(25, 16, 1.0, 6)
    ours = kid(f1, f2, subsets=4, subset_size=1000)
    ref = _reference(f1, f2, subsets=4, subset_size=25)
    assert ours.subset_size == 25
    assert ours.mean == pytest.approx(ref[KEY_METRIC_KID_MEAN], rel=1e-10)


def test_seeded_and_sensitive() -> None:
    f1, f2 = _features(60, 16, 0.0, 7), _features(60, 16, 0.0, 8)
    assert kid(f1, f2, subsets=3, subset_size=20) == kid(f1, f2, subsets=3, subset_size=20)
    same = kid(f1, f2, subsets=20, subset_size=30)
    far = kid(f1, f2 + 2.0, subsets=20, subset_size=30)
    assert abs(same.mean) < 3 * same.std + 1e-3 < far.mean  # unbiased: ~0 for one distribution


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="different dimensions"):
        kid(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(DataError, match="at least 2"):
        kid(np.zeros((1, 4)), np.zeros((10, 4)))
    with pytest.raises(DataError, match="NaN"):
        kid(np.full((10, 4), np.nan), np.zeros((10, 4)))


def test_sets_no_larger_than_the_subset_give_a_zero_std() -> None:
    # Every subset is then the whole of both sets (permuted): one value, std 0 up to summation order.
    f1, f2 = _features(40, 16, 0.0, 9), _features(40, 16, 0.5, 10)
    res = kid(f1, f2, subsets=6, subset_size=100)
    assert res.subset_size == 40 and res.std < 1e-12 * max(1.0, abs(res.mean))
