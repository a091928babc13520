"""Reference statistics: the one place that decides where each extractor's reference features come from.

Policy, per feature extractor of the protocol: statistics given explicitly (``--refstats``) first,
checked against this evaluation's settings, weights and (when the dataset is at hand) file list;
then the cache (``refstats.canonical_name``: a name encoding every choice); then computed in one
streaming pass over the reference images for every extractor still missing, and cached. When a
metric of the protocol needs every feature vector (``registry.VECTORS``), a cached file without
them is recomputed once, and an explicit file without them leaves those metrics unavailable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, ConfigError
from bench.metrics import extractors, networks, preprocess, refstats
from bench.metrics.device import exact_arithmetic
from bench.metrics.features import FeatureCollector
from bench.metrics.networks import Networks
from bench.metrics.options import EvalOptions
from bench.metrics.protocols import Protocol
from bench.metrics.streaming import prefetch_batches, progress, to_device


def metric_tensor(views: torch.Tensor | None, u8: torch.Tensor) -> torch.Tensor:
    """float32 (B,3,H,W) 0..255 network view: the cv2 views if the protocol has them, else the eval view."""
    return u8.to(torch.float32) if views is None else views


def stack_views(views: list[np.ndarray | None]) -> torch.Tensor | None:
    return None if views[0] is None else torch.stack([preprocess.to_chw(v) for v in views])


def cpu_views(names: Collection[str]) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The decode-thread input views of the extractors among ``names`` that declare one."""
    found = {e: extractors.get_extractor(e).view_function() for e in names}
    return {e: f for e, f in found.items() if f is not None}


def stack_own(items: list, index: int) -> dict[str, torch.Tensor]:
    """Each extractor's own views of a batch, stacked as uint8 (B, 3, H, W)."""
    return {e: torch.stack([preprocess.to_chw(x[index][e]) for x in items]) for e in items[0][index]}


def extractor_input(ext: str, network_view01: torch.Tensor, own: dict[str, torch.Tensor]) -> torch.Tensor:
    """What extractor ``ext`` reads: its own view when it declares one, else the network view; [0, 1]."""
    return own[ext].to(torch.float32) / 255.0 if ext in own else network_view01


def vectors_needed(protocol: Protocol) -> set[str]:
    return set(protocol.vector_extractors)


def stream_features(
    protocol: Protocol,
    files: Sequence[Path],
    nets: Networks,
    opts: EvalOptions,
    only: Sequence[str],
    resize_rule: str,
    generated: bool,
    desc: str,
    keep_vectors: Collection[str] = (),
) -> dict[str, FeatureCollector]:
    """Features of ``files`` (decoded, resized by ``resize_rule``) for extractors ``only``, in one pass."""
    running = {e: FeatureCollector(nets.device, e in keep_vectors) for e in only}
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size
    own = cpu_views(only)

    def load(i: int) -> tuple:
        img = preprocess.resize_uint8(
            preprocess.decode(files[i], generated=generated), size, resize_rule, files[i]
        )
        net = preprocess.metric_view(img, cv2_size) if cv2_size else None
        return preprocess.to_chw(img), net, {e: f(img) for e, f in own.items()}

    def collate(items: list) -> tuple:
        return torch.stack([b[0] for b in items]), stack_views([b[1] for b in items]), stack_own(items, 2)

    if only:
        it = prefetch_batches(
            len(files), load, collate, opts.batch_size, opts.workers, opts.ahead, nets.device
        )
        with exact_arithmetic():
            for batch in progress(it, -(-len(files) // opts.batch_size), desc, opts.progress):
                u8, views, extra = to_device(batch, nets.device)
                x = metric_tensor(views, u8) / 255.0
                for ext in only:
                    running[ext].update(nets.extractors[ext](extractor_input(ext, x, extra)))
    return running


def reference_stats(
    protocol: Protocol,
    root: str | Path,
    nets: Networks,
    opts: EvalOptions,
    only: Sequence[str] | None = None,
    keep_vectors: Collection[str] | None = None,
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Compute (streaming) the reference statistics of the extractors in ``only`` (default: all loaded),
    with the feature vectors of those the protocol's metrics need them of."""
    files = refstats.reference_files(root, protocol)
    list_hash = refstats.file_list_hash(files)
    todo = [e for e in (only if only is not None else nets.extractors) if e in nets.extractors]
    keep = vectors_needed(protocol) if keep_vectors is None else set(keep_vectors)
    t0 = time.perf_counter()
    running = stream_features(
        protocol, files, nets, opts, todo, protocol.gt_resize, False, f"reference {protocol.name}", keep
    )
    out = {}
    for ext in todo:
        fs = running[ext].finalize("reference images")
        meta = refstats.make_meta(
            protocol, ext, files, list_hash, nets.weights[networks.extractor_weight_file(ext)]
        )
        out[ext] = refstats.RefStats(mu=fs.mu, sigma=fs.sigma, meta=meta, vectors=fs.vectors)
    info = {"num_reference": len(files), "file_list_sha256": list_hash, "seconds": time.perf_counter() - t0}
    return out, info


def _expected_meta(protocol: Protocol, ext: str, root: str | Path, nets: Networks) -> tuple[dict, list[Path]]:
    files = refstats.reference_files(root, protocol)
    wsha = nets.weights[networks.extractor_weight_file(ext)]
    return refstats.make_meta(protocol, ext, files, refstats.file_list_hash(files), wsha), files


def _explicit_extractor(st: refstats.RefStats, protocol: Protocol) -> str:
    if st.meta is not None:
        ext = st.meta.get("extractor") or st.meta.get("reference_settings", {}).get("extractor")
    elif len(protocol.fid_extractors) == 1:
        ext = protocol.fid_extractors[0]
    else:
        raise BenchError(
            f"{st.path}: statistics without metadata are ambiguous for a protocol with two extractors"
        )
    if ext not in protocol.feature_extractors:
        raise ConfigError(
            f"{st.path}: statistics of extractor {ext!r}, but protocol {protocol.name} uses "
            f"{', '.join(protocol.feature_extractors)}; make them with `pgpis refstats --protocol {protocol.name}`"
        )
    return ext


def _record(st: refstats.RefStats, source: Path | None, cached: bool, **extra: Any) -> dict[str, Any]:
    return {
        "source": str(source) if source is not None else None,
        "cached": cached,
        **extra,
        "imported_without_metadata": st.imported,
        "meta": st.meta,
    }


def obtain_reference_stats(
    protocol: Protocol, root: str | Path | None, nets: Networks, opts: EvalOptions
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Explicit files first, then the cache, then compute (and cache) what is still missing."""
    found: dict[str, refstats.RefStats] = {}
    record: dict[str, Any] = {}
    for st in (refstats.load(p) for p in opts.refstats_files):
        ext = _explicit_extractor(st, protocol)
        if ext not in nets.extractors:
            continue  # its weight is missing: its metrics are reported unavailable
        if st.unavailable:
            raise ConfigError(
                f"{st.path}: placeholder written without the {ext} weight ({st.unavailable}); the weight is "
                "present now, so rerun `pgpis refstats` to compute the statistics"
            )
        if st.meta is not None:
            # Same settings, same weights and (when the dataset is at hand) the same file list.
            if root is not None:
                expected = _expected_meta(protocol, ext, root, nets)[0]
            else:
                wsha = nets.weights[networks.extractor_weight_file(ext)]
                expected = {
                    **st.meta,
                    "reference_settings": protocol.reference_settings(ext),
                    "weights_sha256": wsha,
                }
            refstats.check(st, expected)
        found[ext] = st
        record[ext] = _record(st, st.path, False)
    missing = [e for e in nets.extractors if e not in found]
    if missing and root is None:
        raise BenchError(
            "no reference statistics given and no dataset root to compute them from; pass --refstats"
        )
    cache_dir = opts.cache_dir or refstats.default_cache_dir()
    need_vectors = vectors_needed(protocol)
    to_compute = []
    for ext in missing:
        meta, files = _expected_meta(protocol, ext, root, nets)
        path = cache_dir / refstats.canonical_name(
            protocol, ext, len(files), meta["file_list_sha256"], meta["weights_sha256"]
        )
        st = refstats.load(path) if opts.use_cache and path.is_file() else None
        if st is not None and (st.vectors is not None or ext not in need_vectors):
            refstats.check(st, meta)
            found[ext] = st
            record[ext] = _record(st, path, True)
        else:
            to_compute.append((ext, path))
    if to_compute:
        computed, info = reference_stats(protocol, root, nets, opts, only=[e for e, _ in to_compute])
        for ext, path in to_compute:
            st = computed[ext]
            if opts.use_cache:
                refstats.save(path, st)
                st.path = path
            found[ext] = st
            record[ext] = _record(
                st, path if opts.use_cache else None, False, computed_seconds=info["seconds"]
            )
    return found, record
