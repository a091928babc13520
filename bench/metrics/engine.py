"""Streaming evaluation: decode each image once, feed every metric of a protocol from it.

The steps, each in its own module: the protocol's metrics come from the registry
(``protocols.Protocol.scored_metrics``, ``registry.py``); their networks are built once
(``networks.py``); reference features follow one policy (``reference.py``); one pass over the
pairs feeds every per-pair metric and every extractor (``scoring.py``); set-level metrics are
computed from both sides' features (``scoring.score_sets``); the record is assembled and summarised
(``record.py``) and written (``outputs.py``). Every present pair is scored; nothing is dropped unless
the protocol explicitly emulates a reference script's batch remainder drop, and then the result says
how many and which.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DataError
from bench.memory import release_free_memory
from bench.metrics import refstats, registry
from bench.metrics.features import FeatureSet
from bench.metrics.images_folder import check_sizes, list_pairs
from bench.metrics.networks import Networks, load_networks
from bench.metrics.options import EvalOptions
from bench.metrics.protocols import Protocol
from bench.metrics.record import build_record, rows, summarise_pairs
from bench.metrics.reference import obtain_reference_stats, reference_stats, stream_features, vectors_needed
from bench.metrics.scoring import score_pairs, score_sets

log = logging.getLogger(__name__)


def read_manifest(images_dir: Path) -> dict[str, Any] | None:
    path = images_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(
            f"{path}: unreadable manifest ({err}); regenerate the folder or remove the file"
        ) from None


def drop_masks(protocol: Protocol, images_dir: Path, files: list[Path]) -> dict[str, np.ndarray]:
    """Which generated images each network metric keeps under an emulated remainder drop.

    PIDM's scripts drop the last ``N % k`` images of the order they read: FID reads the images
    folder (``loader_order``), LPIPS the sorted file names. Without emulation every image is kept.
    """
    n = len(files)
    keep = {"fid": np.ones(n, dtype=bool), "lpips": np.ones(n, dtype=bool)}
    k = protocol.drop_remainder
    if k:
        orders = {
            "fid": refstats.loader_order(images_dir, files),
            "lpips": sorted(range(n), key=lambda i: files[i].name),
        }
        for what in protocol.drop_applies_to:
            keep[what][orders[what][n // k * k :]] = False
    return keep


def _release_networks(nets: Networks) -> None:
    # The networks (~120 MB of weights) are done; free them before the 2048-d Frechet distance,
    # whose float64 temporaries (~150 MB) would otherwise stack on top of them (peak RSS).
    nets.extractors = dict.fromkeys(nets.extractors)
    nets.lpips.clear()
    release_free_memory()


def evaluate(
    protocol: Protocol,
    images_dir: str | Path,
    pairs: Sequence[tuple[str, str]],
    gt_dir: str | Path,
    dataset_root: str | Path | None,
    opts: EvalOptions | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score ``images_dir`` against ``gt_dir`` under ``protocol``; returns (metrics record, per-image rows)."""
    opts = opts or EvalOptions()
    images_dir, gt_dir = Path(images_dir), Path(gt_dir)
    t_start = time.perf_counter()
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: generated image folder not found; run `pgpis generate` first")
    folder = list_pairs(images_dir, pairs, opts.name_pattern)
    present, missing = folder.present, folder.missing
    n_expected = len(present) + len(missing)  # unique pair ids (a repeated CSV row is one image)
    if missing and not opts.allow_missing:
        shown = ", ".join(missing[:20]) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
        raise DataError(
            f"{images_dir}: {len(missing)} of {n_expected} generated images are missing: {shown}. Finish the "
            "generation (rerun `pgpis generate`, it resumes) or pass --allow-missing to score the rest"
        )
    gen_size = check_sizes(present)
    manifest = read_manifest(images_dir)
    pair_ids = [p[0] for p in present]
    keep = drop_masks(protocol, images_dir, [p[3] for p in present])
    scored = protocol.scored_metrics()

    nets = load_networks(protocol, opts)
    refs: dict[str, refstats.RefStats] = {}
    ref_record: dict[str, Any] = {}
    t_ref = time.perf_counter()
    if nets.extractors:
        refs, ref_record = obtain_reference_stats(protocol, dataset_root, nets, opts)
        release_free_memory()  # the reference pass's activations and covariance temporaries
    ref_seconds = time.perf_counter() - t_ref

    t_gen = time.perf_counter()
    per_image, running = score_pairs(
        protocol, scored, nets, present, gt_dir, keep, vectors_needed(protocol), opts
    )
    gen_seconds = time.perf_counter() - t_gen
    _release_networks(nets)

    t_fid = time.perf_counter()
    unavailable = dict(nets.unavailable)
    generated: dict[str, FeatureSet] = {}
    for ext, collector in running.items():
        try:
            generated[ext] = collector.finalize("generated images", "the generated images")
        except DataError as err:
            if opts.strict:
                raise
            for s in scored:
                if s.metric.extractor == ext and s.metric.kind == registry.SET_LEVEL:
                    unavailable[s.result_name] = str(err)
    reference = {
        ext: FeatureSet(st.mu, st.sigma, st.vectors, str(st.path or "the reference statistics"))
        for ext, st in refs.items()
    }
    metrics, details, failed = score_sets(
        protocol, scored, generated, reference, opts.strict, device=nets.device
    )
    unavailable.update(failed)
    fid_seconds = time.perf_counter() - t_fid

    pair_means, ci95, undefined = summarise_pairs(scored, per_image, keep, pair_ids, opts)
    metrics.update(pair_means)
    record = build_record(
        protocol=protocol,
        images_dir=images_dir,
        folder=folder,
        manifest=manifest,
        opts=opts,
        n_expected=n_expected,
        keep=keep,
        pair_ids=pair_ids,
        metrics=metrics,
        ci95=ci95,
        details=details,
        undefined=undefined,
        unavailable=unavailable,
        nets=nets,
        ref_record=ref_record,
        gen_size=gen_size,
        timing={
            "reference": ref_seconds,
            "generated_pass": gen_seconds,
            "frechet": fid_seconds,
            "total": time.perf_counter() - t_start,
        },
    )
    return record, rows(pair_ids, per_image)


from bench.metrics.outputs import write_outputs  # noqa: E402  (re-exported: the CLI's import path)

__all__ = [
    "EvalOptions",
    "Networks",
    "evaluate",
    "load_networks",
    "obtain_reference_stats",
    "reference_stats",
    "stream_features",
    "write_outputs",
]
