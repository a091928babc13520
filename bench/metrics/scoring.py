"""The pass over the pairs: each pair decoded once, every network run once per image, every metric fed.

CPU threads decode and resize each generated image and its GT (``streaming.py``) ahead of the device.
Pairs are visited grouped by target so that a target's decode and LPIPS features serve all its pairs
(``targets.py``: also SSIM's filtered target); every value is written to its pair's row.
Per chunk of pairs: the network view (PIDM's cv2 view, else the eval view) goes through each feature
extractor once (every set-level metric on that extractor shares its features) and each LPIPS network
once; the pixel metrics read their declared views of the eval images. Only one float per image and
per-pair metric is kept, plus running feature sums (and vectors, for metrics that need them).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import DataError
from bench.metrics import networks, preprocess, registry
from bench.metrics.device import chunk_size, exact_arithmetic
from bench.metrics.features import FeatureCollector, FeatureSet
from bench.metrics.networks import Networks
from bench.metrics.options import EvalOptions
from bench.metrics.pixels import PixelScorer
from bench.metrics.protocols import Protocol, ScoredMetric
from bench.metrics.reference import cpu_views, extractor_input, metric_tensor, stack_own, stack_views
from bench.metrics.streaming import prefetch_batches, progress, to_device
from bench.metrics.targets import DecodeOnce, TargetFeatures, target_order

NET_CHUNK = 8  # pairs whose float views and activations are alive at once on the CPU


def score_pairs(
    protocol: Protocol,
    scored: Sequence[ScoredMetric],
    nets: Networks,
    present: Sequence[tuple],
    gt_dir: Path,
    keep: dict[str, np.ndarray],
    keep_vectors: set[str],
    opts: EvalOptions,
) -> tuple[dict[str, np.ndarray], dict[str, FeatureCollector]]:
    """Per-pair values (NaN where not computed) and the generated images' features per extractor."""
    n = len(present)
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size

    order = target_order([p[2] for p in present])

    def load_target(tgt: str) -> tuple:
        gt = preprocess.resize_uint8(
            preprocess.decode(gt_dir / tgt, generated=False), size, protocol.gt_resize, gt_dir / tgt
        )
        return preprocess.to_chw(gt), preprocess.metric_view(gt, cv2_size) if cv2_size else None

    target_once = DecodeOnce(load_target)

    def load(k: int) -> tuple:
        _pid, _src, tgt, gpath = present[order[k]]
        gen = preprocess.resize_uint8(
            preprocess.decode(gpath, generated=True), size, protocol.gen_resize, gpath
        )
        gm = preprocess.metric_view(gen, cv2_size) if cv2_size else None
        gt_chw, tm = target_once(tgt)
        return preprocess.to_chw(gen), gt_chw, gm, tm, {e: f(gen) for e, f in own.items()}

    def collate(items: list) -> tuple:
        return (
            torch.stack([x[0] for x in items]),
            torch.stack([x[1] for x in items]),
            stack_views([x[2] for x in items]),
            stack_views([x[3] for x in items]),
            stack_own(items, 4),
        )

    per_pair = [s for s in scored if s.metric.kind == registry.PER_PAIR and networks.available(s, nets)]
    lpips = {
        s.result_name: s.metric.settings()["net"] for s in per_pair if s.metric.consumes == registry.LPIPS
    }
    pixels = PixelScorer(protocol, [s for s in per_pair if s.metric.consumes == registry.PIXELS])
    per_image = {s.result_name: np.full(n, np.nan) for s in per_pair}
    running = {e: FeatureCollector(nets.device, e in keep_vectors) for e in nets.extractors}
    own = cpu_views(list(nets.extractors))
    target_feats = {net: TargetFeatures(nets.lpips[net].features) for net in set(lpips.values())}

    def score_chunk(chunk: tuple, rows: np.ndarray) -> None:
        gen_u8, gt_u8, gen_views, gt_views, extra = chunk
        keep_fid = keep["fid"][rows]
        kb = torch.from_numpy(keep_fid).to(gen_u8.device)
        gen_m = metric_tensor(gen_views, gen_u8)
        tgts = [present[i][2] for i in rows]
        for ext, model in nets.extractors.items():
            if kb.any():
                x = extractor_input(ext, gen_m / 255.0, extra)
                running[ext].update(model(x[kb]), rows[keep_fid])
        if lpips:
            gt_m = metric_tensor(gt_views, gt_u8)
            if protocol.lpips_input == "unit":
                a, c = 2 * (gen_m / 255.0) - 1, 2 * (gt_m / 255.0) - 1  # lpips normalize=True on [0, 1]
            else:
                a, c = gen_m / 127.5 - 1, gt_m / 127.5 - 1
            del gt_m
            for name, net in lpips.items():

                def gt_features(
                    x: torch.Tensor, sl: slice, cached: TargetFeatures = target_feats[net]
                ) -> list:
                    return cached(x, tgts[sl])  # the targets' features, once per target

                per_image[name][rows] = nets.lpips[net](a, c, gt_features=gt_features).cpu().numpy()
            del a, c
        del gen_m

    pos = 0
    step = chunk_size(nets.device, NET_CHUNK, opts.batch_size)
    it = prefetch_batches(n, load, collate, opts.batch_size, opts.workers, opts.ahead, nets.device)
    with exact_arithmetic():
        for batch in progress(it, -(-n // opts.batch_size), f"evaluate {protocol.name}", opts.progress):
            batch = to_device(batch, nets.device)
            rows = order[pos : pos + batch[0].shape[0]]
            pos += rows.shape[0]
            # Sub-chunks of NET_CHUNK pairs on the CPU: the float views and network activations of a
            # whole batch would dominate peak RSS; every value is per image (feature sums are order-free).
            for j in range(0, rows.shape[0], step):
                score_chunk(tuple(_rows(t, j, step) for t in batch), rows[j : j + step])
            # The pixel metrics over the whole batch, in their own chunks (pixels.CPU_CHUNK): fewer,
            # larger filter calls than per network chunk.
            pixels.score(batch[0], batch[1], per_image, rows, [present[i][2] for i in rows])
            del batch
    return per_image, running


def _rows(t: torch.Tensor | dict | None, j: int, step: int) -> torch.Tensor | dict | None:
    if isinstance(t, dict):
        return {k: v[j : j + step] for k, v in t.items()}
    return None if t is None else t[j : j + step]


def score_sets(
    protocol: Protocol,
    scored: Sequence[ScoredMetric],
    generated: dict[str, FeatureSet],
    reference: dict[str, FeatureSet],
    strict: bool,
    device: torch.device | str = "cpu",
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, str]]:
    """Set-level metrics from both sides' features: (values, details such as a KID's std, unavailable).

    A metric function returns a float, or a mapping with ``value`` and further details; a DataError
    (too few images, statistics that do not fit) makes that metric unavailable, or fails if strict.
    """
    values: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for s in scored:
        ext = s.metric.extractor or ""
        if s.metric.kind != registry.SET_LEVEL or ext not in generated or ext not in reference:
            continue
        name = s.result_name
        fn, settings = s.metric.function(), s.metric.settings(protocol)
        if "device" in inspect.signature(fn).parameters:
            settings["device"] = device  # KID's and PRDC's distance matrices run where the networks ran
        try:
            out = fn(generated[ext], reference[ext], **settings)
        except DataError as err:
            if strict:
                raise
            unavailable[name] = str(err)
            continue
        if isinstance(out, dict):
            values[name] = float(out["value"])
            details[name] = {k: v for k, v in out.items() if k != "value"}
        else:
            values[name] = float(out)
    return values, details, unavailable
