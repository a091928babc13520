"""Precision/recall/density/coverage equal the authors' ``prdc`` package on the same features."""

from __future__ import annotations

import numpy as np
import pytest
from prdc import compute_prdc

from bench.errors import DataError
from bench.metrics.prdc import prdc


# block_bytes: one block for everything, then blocks of a few rows (8 * 150 * 17 bytes = 17 rows of 150)
@pytest.mark.parametrize(
    "n_real,n_fake,block_bytes", [(150, 120, 1 << 27), (150, 120, 8 * 150 * 17), (40, 90, 8 * 90 * 3)]
)
def test_matches_prdc_package(
    n_real: int, n_fake: int, block_bytes: int, capsys: pytest.CaptureFixture
) -> None:
    rng = np.random.default_rng(n_real + block_bytes % 1000)
    real = rng.standard_normal((n_real, 24))
    # a shifted, narrower fake set: precision, recall and coverage land strictly between 0 and 1
    fake = rng.standard_normal((n_fake, 24)) * 0.9 + 0.6
    ref = compute_prdc(real, fake, nearest_k=5)
    ours = prdc(real, fake, nearest_k=5, block_bytes=block_bytes)
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, name) == pytest.approx(float(ref[name]), abs=1e-12), name
    assert 0 < ours.precision < 1 and 0 < ours.recall < 1 and 0 < ours.coverage < 1


def test_float32_features_and_other_k() -> None:
    rng = np.random.default_rng(3)
    real = rng.standard_normal((80, 16)).astype(np.float32)
    fake = (rng.standard_normal((70, 16)) * 1.2).astype(np.float32)
    ref = compute_prdc(real.astype(np.float64), fake.astype(np.float64), nearest_k=3)
    ours = prdc(real, fake, nearest_k=3, block_bytes=8 * 80 * 32)
    assert (ours.precision, ours.recall, ours.density, ours.coverage) == pytest.approx(
        (ref["precision"], ref["recall"], ref["density"], ref["coverage"]), abs=1e-12
    )


def test_identical_sets_are_perfect() -> None:
    x = np.random.default_rng(4).standard_normal((50, 8))
    res = prdc(x, x.copy())
    assert (res.precision, res.recall, res.coverage) == (1.0, 1.0, 1.0)


def test_bad_inputs() -> None:
    with pytest.raises(DataError, match="more than 5"):
        prdc(np.zeros((5, 4)), np.zeros((10, 4)))
    with pytest.raises(DataError, match="different dimensions"):
        prdc(np.zeros((10, 4)), np.zeros((10, 3)))
