"""Streaming evaluation: decode each image once, feed every metric of a protocol from it.

Pairs are decoded in batches by CPU threads (``streaming.py``) ahead of the device that runs
every metric (``--device``: Inception, LPIPS, SSIM, PSNR; ``device.py``); at most ``ahead``
batches are in flight, FID features go into running float64 statistics on the device, and only
one float per image and metric is kept, so memory does not grow with the number of images.
Every present pair is scored; nothing is dropped unless the protocol explicitly emulates a
reference script's batch remainder drop, and then the result says how many and which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, ConfigError, DataError, MissingWeightError
from bench.memory import release_free_memory
from bench.metrics import fid, preprocess, refstats, weights
from bench.metrics.bootstrap import bootstrap_ci
from bench.metrics.device import chunk_size, device_name, exact_arithmetic, resolve_device
from bench.metrics.fid import RunningStats, frechet_distance
from bench.metrics.images_folder import DEFAULT_PATTERN, check_sizes, list_pairs
from bench.metrics.inception import EXTRACTORS, FEATURE_DIMS, build_extractor
from bench.metrics.lpips_metric import BACKBONE_WEIGHT, Lpips, head_path
from bench.metrics.pixels import pixel_metric_names, score_pixels
from bench.metrics.protocols import Protocol, fid_metric_name, lpips_metric_name
from bench.metrics.provenance import provenance
from bench.metrics.results_schema import SCHEMA_VERSION
from bench.metrics.streaming import prefetch_batches, progress, to_device

log = logging.getLogger(__name__)

UNDEFINED_REASONS = {
    "psnr": "generated image identical to the GT: MSE = 0, PSNR infinite (skimage returns inf)",
    "ssim": "constant generated image: data_range = max - min = 0, SSIM is 0/0 (skimage returns NaN)",
}


@dataclass
class EvalOptions:
    batch_size: int = 32
    workers: int = 2  # decode threads
    ahead: int = 2  # batches decoded ahead of the networks
    allow_missing: bool = False
    strict: bool = False
    allow_unverified_weights: bool = False
    refstats_files: Sequence[Path] = ()
    cache_dir: Path | None = None  # None: refstats.default_cache_dir()
    use_cache: bool = True
    bootstrap: int = 1000
    seed: int = 0
    progress: bool = True
    device: str = "cpu"  # auto | cpu | cuda | cuda:N (bench.metrics.device)
    name_pattern: str = DEFAULT_PATTERN  # generated file names (bench.metrics.images_folder)


@dataclass
class Networks:
    extractors: dict[str, torch.nn.Module] = field(default_factory=dict)
    lpips: dict[str, Lpips] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    unverified: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric name -> reason
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def _resolve(key: str, opts: EvalOptions, nets: Networks, metric: str) -> Path | None:
    try:
        w = weights.resolve(key, allow_unverified=opts.allow_unverified_weights)
    except MissingWeightError as err:
        if opts.strict:
            raise
        nets.unavailable[metric] = str(err)
        return None
    nets.weights[w.spec.filename] = w.sha256
    if not w.verified:
        nets.unverified.append(w.spec.filename)
    return w.path


def load_networks(protocol: Protocol, opts: EvalOptions, extractors: Sequence[str] | None = None) -> Networks:
    """Build the protocol's networks; a missing weight makes its metric unavailable (or raises if strict)."""
    nets = Networks(device=resolve_device(opts.device))
    for ext in protocol.fid_extractors if extractors is None else extractors:
        path = _resolve(EXTRACTORS[ext], opts, nets, fid_metric_name(ext, protocol.reference_split))
        if path is not None:
            nets.extractors[ext] = build_extractor(ext, path).to(nets.device)
    if extractors is None:
        for net in protocol.lpips_nets:
            path = _resolve(BACKBONE_WEIGHT[net], opts, nets, lpips_metric_name(net))
            if path is not None:
                nets.lpips[net] = Lpips(net, path).to(nets.device)
                head = head_path(net)
                nets.weights[f"lpips/v0.1/{head.name}"] = weights.sha256_file(head)
    return nets


def _metric_tensor(views: torch.Tensor | None, u8: torch.Tensor) -> torch.Tensor:
    """float32 (B,3,H,W) 0..255 view for Inception/LPIPS: the cv2 views if any, else the eval view."""
    return u8.to(torch.float32) if views is None else views


def _stack_views(views: list[np.ndarray | None]) -> torch.Tensor | None:
    return None if views[0] is None else torch.stack([preprocess.to_chw(v) for v in views])


# ----------------------------------------------------------------------------------------- reference


def stream_features(
    protocol: Protocol,
    files: Sequence[Path],
    nets: Networks,
    opts: EvalOptions,
    only: Sequence[str],
    resize_rule: str,
    generated: bool,
    desc: str,
) -> dict[str, RunningStats]:
    """Running feature statistics of ``files`` (decoded, resized by ``resize_rule``) for extractors ``only``."""
    running = {e: RunningStats(FEATURE_DIMS, nets.device) for e in only}
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size

    def load(i: int) -> tuple[torch.Tensor, np.ndarray | None]:
        img = preprocess.resize_uint8(
            preprocess.decode(files[i], generated=generated), size, resize_rule, files[i]
        )
        return preprocess.to_chw(img), (preprocess.metric_view(img, cv2_size) if cv2_size else None)

    def collate(items: list) -> tuple[torch.Tensor, torch.Tensor | None]:
        return torch.stack([b[0] for b in items]), _stack_views([b[1] for b in items])

    if only:
        it = prefetch_batches(
            len(files), load, collate, opts.batch_size, opts.workers, opts.ahead, nets.device
        )
        with exact_arithmetic():
            for batch in progress(it, -(-len(files) // opts.batch_size), desc, opts.progress):
                u8, views = to_device(batch, nets.device)
                x = _metric_tensor(views, u8) / 255.0
                for ext in only:
                    running[ext].update(nets.extractors[ext](x))
    return running


def reference_stats(
    protocol: Protocol, root: str | Path, nets: Networks, opts: EvalOptions, only: Sequence[str] | None = None
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Compute (streaming) the reference statistics of the extractors in ``only`` (default: all loaded)."""
    files = refstats.reference_files(root, protocol)
    list_hash = refstats.file_list_hash(files)
    todo = [e for e in (only if only is not None else nets.extractors) if e in nets.extractors]
    t0 = time.perf_counter()
    running = stream_features(
        protocol, files, nets, opts, todo, protocol.gt_resize, False, f"reference {protocol.name}"
    )
    out = {}
    for ext in todo:
        mu, sigma = running[ext].finalize("reference images")
        w = weights.WEIGHTS[EXTRACTORS[ext]].filename
        meta = refstats.make_meta(protocol, ext, files, list_hash, nets.weights[w])
        out[ext] = refstats.RefStats(mu=mu, sigma=sigma, meta=meta)
    info = {"num_reference": len(files), "file_list_sha256": list_hash, "seconds": time.perf_counter() - t0}
    return out, info


def _expected_meta(protocol: Protocol, ext: str, root: str | Path, nets: Networks) -> tuple[dict, list[Path]]:
    files = refstats.reference_files(root, protocol)
    w = weights.WEIGHTS[EXTRACTORS[ext]].filename
    return refstats.make_meta(protocol, ext, files, refstats.file_list_hash(files), nets.weights[w]), files


def obtain_reference_stats(
    protocol: Protocol, root: str | Path | None, nets: Networks, opts: EvalOptions
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Explicit files first, then the cache, then compute (and cache) what is still missing."""
    found: dict[str, refstats.RefStats] = {}
    record: dict[str, Any] = {}
    explicit = [refstats.load(p) for p in opts.refstats_files]
    for st in explicit:
        if st.meta is not None:
            ext = st.meta.get("extractor") or st.meta.get("reference_settings", {}).get("extractor")
        elif len(protocol.fid_extractors) == 1:
            ext = protocol.fid_extractors[0]
        else:
            raise BenchError(
                f"{st.path}: statistics without metadata are ambiguous for a protocol with two extractors"
            )
        if ext not in protocol.fid_extractors:
            raise ConfigError(
                f"{st.path}: statistics of extractor {ext!r}, but protocol {protocol.name} uses "
                f"{', '.join(protocol.fid_extractors)}; make them with `pgpis refstats --protocol {protocol.name}`"
            )
        if ext not in nets.extractors:
            continue  # its weight is missing: the FID is reported unavailable
        if st.unavailable:
            raise ConfigError(
                f"{st.path}: placeholder written without the {ext} weight ({st.unavailable}); the weight is "
                "present now, so rerun `pgpis refstats` to compute the statistics"
            )
        if st.meta is not None:
            # Same settings, same weights and (when the dataset is at hand) the same file list.
            wsha = nets.weights[weights.WEIGHTS[EXTRACTORS[ext]].filename]
            if root is not None:
                expected = _expected_meta(protocol, ext, root, nets)[0]
            else:
                expected = {
                    **st.meta,
                    "reference_settings": protocol.reference_settings(ext),
                    "weights_sha256": wsha,
                }
            refstats.check(st, expected)
        found[ext] = st
        record[ext] = {
            "source": str(st.path),
            "cached": False,
            "imported_without_metadata": st.imported,
            "meta": st.meta,
        }
    missing = [e for e in nets.extractors if e not in found]
    if missing and root is None:
        raise BenchError(
            "no reference statistics given and no dataset root to compute them from; pass --refstats"
        )
    cache_dir = opts.cache_dir or refstats.default_cache_dir()
    to_compute = []
    for ext in missing:
        meta, files = _expected_meta(protocol, ext, root, nets)
        path = cache_dir / refstats.canonical_name(
            protocol, ext, len(files), meta["file_list_sha256"], meta["weights_sha256"]
        )
        if opts.use_cache and path.is_file():
            st = refstats.load(path)
            refstats.check(st, meta)
            found[ext] = st
            record[ext] = {
                "source": str(path),
                "cached": True,
                "imported_without_metadata": False,
                "meta": st.meta,
            }
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
            record[ext] = {
                "source": str(path) if opts.use_cache else None,
                "cached": False,
                "computed_seconds": info["seconds"],
                "imported_without_metadata": False,
                "meta": st.meta,
            }
    return found, record


# ----------------------------------------------------------------------------------------- pairs


def _read_manifest(images_dir: Path) -> dict[str, Any] | None:
    import json

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
    manifest = _read_manifest(images_dir)

    n = len(present)
    keep = drop_masks(protocol, images_dir, [p[3] for p in present])

    nets = load_networks(protocol, opts)
    refs: dict[str, refstats.RefStats] = {}
    ref_record: dict[str, Any] = {}
    t_ref = time.perf_counter()
    if nets.extractors:
        refs, ref_record = obtain_reference_stats(protocol, dataset_root, nets, opts)
        release_free_memory()  # the reference pass's activations and covariance temporaries
    ref_seconds = time.perf_counter() - t_ref
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size

    def load(i: int) -> tuple:
        _pid, _src, tgt, gpath = present[i]
        gen = preprocess.resize_uint8(
            preprocess.decode(gpath, generated=True), size, protocol.gen_resize, gpath
        )
        gt = preprocess.resize_uint8(
            preprocess.decode(gt_dir / tgt, generated=False), size, protocol.gt_resize, gt_dir / tgt
        )
        gm = preprocess.metric_view(gen, cv2_size) if cv2_size else None
        tm = preprocess.metric_view(gt, cv2_size) if cv2_size else None
        return preprocess.to_chw(gen), preprocess.to_chw(gt), gm, tm

    def collate(items: list) -> tuple:
        return (
            torch.stack([x[0] for x in items]),
            torch.stack([x[1] for x in items]),
            _stack_views([x[2] for x in items]),
            _stack_views([x[3] for x in items]),
        )

    per_image: dict[str, np.ndarray] = {}
    names = [lpips_metric_name(net) for net in nets.lpips] + list(pixel_metric_names(protocol))
    for name in names:
        per_image[name] = np.full(n, np.nan)
    running = {e: RunningStats(FEATURE_DIMS, nets.device) for e in nets.extractors}

    t_gen = time.perf_counter()
    pos = 0
    step = chunk_size(nets.device, NET_CHUNK, opts.batch_size)
    it = prefetch_batches(n, load, collate, opts.batch_size, opts.workers, opts.ahead, nets.device)
    with exact_arithmetic():
        for batch in progress(it, -(-n // opts.batch_size), f"evaluate {protocol.name}", opts.progress):
            batch = to_device(batch, nets.device)
            # Sub-chunks of NET_CHUNK pairs on the CPU: the float views and network activations of a
            # whole batch would dominate peak RSS; every value is per image (FID sums are order-free).
            for j in range(0, batch[0].shape[0], step):
                chunk = tuple(None if t is None else t[j : j + step] for t in batch)
                _score_chunk(
                    protocol, nets, chunk, keep, running, per_image, slice(pos, pos + chunk[0].shape[0])
                )
                pos += chunk[0].shape[0]
            del batch
    gen_seconds = time.perf_counter() - t_gen
    # The networks (~120 MB of weights) are done; free them before the 2048-d Frechet distance,
    # whose float64 temporaries (~150 MB) would otherwise stack on top of them (peak RSS).
    nets.extractors = dict.fromkeys(nets.extractors)
    nets.lpips.clear()
    release_free_memory()

    t_fid = time.perf_counter()
    metrics: dict[str, float] = {}
    unavailable = dict(nets.unavailable)
    for ext in nets.extractors:
        name = fid_metric_name(ext, protocol.reference_split)
        try:
            mu, sigma = running[ext].finalize("generated images")
            with fid.route(protocol.fid_route):
                metrics[name] = frechet_distance(mu, sigma, refs[ext].mu, refs[ext].sigma)
        except DataError as err:
            if opts.strict:
                raise
            unavailable[name] = str(err)
    fid_seconds = time.perf_counter() - t_fid

    ci95: dict[str, list[float]] = {}
    undefined: dict[str, dict[str, Any]] = {}
    for name, values in per_image.items():
        use = keep["lpips"] if name.startswith("lpips") else np.ones(n, bool)
        vals = values[use]
        finite = np.isfinite(vals)
        if (~finite).any():
            undefined[name] = {
                "count": int((~finite).sum()),
                "pair_ids": [present[i][0] for i in np.flatnonzero(use)[~finite]][:100],
                "reason": UNDEFINED_REASONS["psnr" if name.startswith("psnr") else "ssim"],
                "handling": "left out of the mean and the CI; empty cell in per_image.csv",
            }
        if finite.any():
            metrics[name] = float(vals[finite].mean())
            ci = bootstrap_ci(vals[finite], n_resamples=opts.bootstrap, seed=opts.seed)
            if ci is not None:
                ci95[name] = [ci[0], ci[1]]

    from bench.versions import git_hash, package_versions

    dropped_ids = {what: [present[i][0] for i in np.flatnonzero(~m)] for what, m in keep.items()}
    record = {
        "schema_version": SCHEMA_VERSION,
        "protocol": protocol.name,
        "protocol_settings": protocol.settings(),
        "method": (manifest or {}).get("method"),
        "provenance": provenance(manifest, images_dir),
        "images": str(images_dir),
        "name_pattern": opts.name_pattern,
        "input_formats": folder.formats,
        "lossy_input": folder.lossy,
        "num_images": n,
        "num_expected": n_expected,
        "missing": missing,
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
        "timing_seconds": {
            "reference": ref_seconds,
            "generated_pass": gen_seconds,
            "frechet": fid_seconds,
            "total": time.perf_counter() - t_start,
        },
        "versions": package_versions(),
        "git": git_hash(),
    }
    rows = [{"pair_id": present[i][0], **{k: float(v[i]) for k, v in per_image.items()}} for i in range(n)]
    return record, rows


NET_CHUNK = 8  # pairs whose float views and activations are alive at once on the CPU


def _score_chunk(
    protocol: Protocol,
    nets: Networks,
    chunk: tuple,
    keep: dict[str, np.ndarray],
    running: dict[str, RunningStats],
    per_image: dict[str, np.ndarray],
    sl: slice,
) -> None:
    """FID features, LPIPS, SSIM and PSNR of a few decoded pairs (rows ``sl`` of the outputs)."""
    gen_u8, gt_u8, gen_views, gt_views = chunk
    kb = torch.from_numpy(keep["fid"][sl]).to(gen_u8.device)
    gen_m = _metric_tensor(gen_views, gen_u8)
    for ext, model in nets.extractors.items():
        if kb.any():
            running[ext].update(model(gen_m[kb] / 255.0))
    if nets.lpips:
        gt_m = _metric_tensor(gt_views, gt_u8)
        if protocol.lpips_input == "unit":
            a, c = 2 * (gen_m / 255.0) - 1, 2 * (gt_m / 255.0) - 1  # lpips normalize=True on [0, 1]
        else:
            a, c = gen_m / 127.5 - 1, gt_m / 127.5 - 1
        del gt_m
        for net, model in nets.lpips.items():
            per_image[lpips_metric_name(net)][sl] = model(a, c).cpu().numpy()
        del a, c
    del gen_m
    score_pixels(protocol, gen_u8, gt_u8, per_image, sl)


from bench.metrics.outputs import write_outputs  # noqa: E402  (re-exported: the CLI's import path)

__all__ = [
    "EvalOptions",
    "evaluate",
    "load_networks",
    "obtain_reference_stats",
    "reference_stats",
    "write_outputs",
]
