"""Set-level metrics on two feature sets, as the registry calls them: ``f(generated, reference, **settings)``.

The math lives in ``kid.py`` and ``prdc.py`` (each checked against torch-fidelity / prdc); this file
adapts it to the engine's ``features.FeatureSet`` and returns the value with its details (a KID's
std over subsets, the subset size actually used). Precision, recall, density and coverage are one
computation: it runs once per pair of feature sets and each of the four metrics reads its number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.metrics.features import FeatureSet
from bench.metrics.kid import kid
from bench.metrics.prdc import PRDCResult, prdc


def kid_of_sets(
    gen: FeatureSet, ref: FeatureSet, subsets: int, subset_size: int, seed: int, device: Any = "cpu"
) -> dict[str, Any]:
    """KID (torch-fidelity: generated = input1, reference = input2); mean over subsets, with their std."""
    r = kid(gen.require_vectors("KID"), ref.require_vectors("KID"), subsets, subset_size, seed, device=device)
    return {"value": r.mean, "std": r.std, "subsets": r.subsets, "subset_size": r.subset_size}


def _subsample(x: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(x) <= limit:
        return x
    rows = np.sort(np.random.RandomState(seed).choice(len(x), limit, replace=False))
    return x[rows]


def prdc_of_sets(
    gen: FeatureSet,
    ref: FeatureSet,
    component: str,
    nearest_k: int,
    max_real: int | None,
    max_fake: int | None,
    seed: int,
    device: Any = "cpu",
) -> dict[str, Any]:
    """One of precision/recall/density/coverage (Naeem et al. 2020) of the generated set against the
    reference; sets larger than ``max_real`` / ``max_fake`` are subsampled (seeded, without replacement)."""
    real = _subsample(ref.require_vectors("PRDC"), max_real, seed)
    fake = _subsample(gen.require_vectors("PRDC"), max_fake, seed + 1)
    # Kept on the generated set (it lives as long as one scoring): the other three metrics reuse it.
    key = ("prdc", nearest_k, max_real, max_fake, seed)
    cached = gen.derived.get(key)
    if cached is None or cached[0] is not ref:
        cached = gen.derived[key] = (ref, prdc(real, fake, nearest_k, device=device))
    r: PRDCResult = cached[1]
    return {
        "value": getattr(r, component),
        "nearest_k": nearest_k,
        "num_real": len(real),
        "num_fake": len(fake),
        "subsample_seed": seed,
    }
