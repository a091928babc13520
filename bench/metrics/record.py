"""The results record of a scored run: per-pair means with bootstrap CIs, undefined values, metadata.

What goes into ``metrics.json`` (validated against ``metrics.schema.json`` before it is written) and
the rows of ``per_image.csv``. A per-pair metric's value is the mean over the images it is defined on;
images where it is undefined (e.g. PSNR of an image identical to its GT) are counted, named and left
out of the mean and the interval, with the reason its declaration gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.metrics import registry
from bench.metrics.bootstrap import bootstrap_ci
from bench.metrics.device import device_name
from bench.metrics.networks import Networks
from bench.metrics.options import EvalOptions
from bench.metrics.protocols import Protocol, ScoredMetric
from bench.metrics.provenance import provenance
from bench.metrics.results_schema import SCHEMA_VERSION

NON_FINITE = "the metric's value is not finite for this image"


def summarise_pairs(
    scored: Sequence[ScoredMetric],
    per_image: dict[str, np.ndarray],
    keep: dict[str, np.ndarray],
    pair_ids: Sequence[str],
    opts: EvalOptions,
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, dict[str, Any]]]:
    """(means, 95% bootstrap intervals, undefined values) of every per-pair metric."""
    n = len(pair_ids)
    declared = {s.result_name: s.metric for s in scored}
    metrics: dict[str, float] = {}
    ci95: dict[str, list[float]] = {}
    undefined: dict[str, dict[str, Any]] = {}
    for name, values in per_image.items():
        metric = declared[name]
        use = keep["lpips"] if metric.consumes == registry.LPIPS else np.ones(n, bool)
        vals = values[use]
        finite = np.isfinite(vals)
        if (~finite).any():
            undefined[name] = {
                "count": int((~finite).sum()),
                "pair_ids": [pair_ids[i] for i in np.flatnonzero(use)[~finite]][:100],
                "reason": metric.undefined or NON_FINITE,
                "handling": "left out of the mean and the CI; empty cell in per_image.csv",
            }
        if finite.any():
            metrics[name] = float(vals[finite].mean())
            ci = bootstrap_ci(vals[finite], n_resamples=opts.bootstrap, seed=opts.seed)
            if ci is not None:
                ci95[name] = [ci[0], ci[1]]
    return metrics, ci95, undefined


def build_record(
    *,
    protocol: Protocol,
    images_dir: Path,
    folder: Any,  # images_folder.PairFolder
    manifest: dict[str, Any] | None,
    opts: EvalOptions,
    n_expected: int,
    keep: dict[str, np.ndarray],
    pair_ids: Sequence[str],
    metrics: dict[str, float],
    ci95: dict[str, list[float]],
    details: dict[str, dict[str, Any]],
    undefined: dict[str, dict[str, Any]],
    unavailable: dict[str, str],
    nets: Networks,
    ref_record: dict[str, Any],
    gen_size: tuple[int, int],
    timing: dict[str, float],
) -> dict[str, Any]:
    from bench.versions import git_hash, package_versions

    dropped_ids = {what: [pair_ids[i] for i in np.flatnonzero(~m)] for what, m in keep.items()}
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "protocol": protocol.name,
        "protocol_settings": protocol.settings(),
        "method": (manifest or {}).get("method"),
        "provenance": provenance(manifest, images_dir),
        "images": str(images_dir),
        "name_pattern": opts.name_pattern,
        "input_formats": folder.formats,
        "lossy_input": folder.lossy,
        "num_images": len(pair_ids),
        "num_expected": n_expected,
        "missing": folder.missing,
        "allow_missing": bool(opts.allow_missing),
        "num_fid_images": int(keep["fid"].sum()),
        "num_lpips_images": int(keep["lpips"].sum()),
        "dropped": max(len(v) for v in dropped_ids.values()),  # per network metric (N % k)
        "dropped_detail": {
            "emulated_batch": protocol.drop_remainder,
            "applies_to": list(protocol.drop_applies_to) if protocol.drop_remainder else [],
            "order": "fid: the folder's *.jpg then *.png in directory order; lpips: sorted file names"
            if protocol.drop_remainder
            else None,
            "pair_ids": {what: ids for what, ids in dropped_ids.items() if ids},
        },
        "metrics": metrics,
        "ci95": ci95,
        "ci95_method": {
            "kind": "percentile bootstrap of the per-image mean",
            "resamples": opts.bootstrap,
            "seed": opts.seed,
        },
        "undefined": undefined,
        "unavailable": unavailable,
        "weights": nets.weights,
        "weights_unverified": nets.unverified,
        "refstats": ref_record,
        "generated_size": list(gen_size),
        "device": device_name(nets.device),
        "dtype": "float32",
        "timing_seconds": timing,
        "versions": package_versions(),
        "git": git_hash(),
    }
    if details:  # set-level metrics' further numbers (a KID's std over subsets, its subset size)
        record["metric_details"] = details
    if protocol.metrics:  # directions of metrics beyond the historical fields: a reader may lack a plugin
        names = [s.result_name for s in protocol.scored_metrics()]
        record["directions"] = {n: registry.direction(n) for n in names if registry.direction(n)}
    return record


def rows(pair_ids: Sequence[str], per_image: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"pair_id": pid, **{k: float(v[i]) for k, v in per_image.items()}} for i, pid in enumerate(pair_ids)
    ]
