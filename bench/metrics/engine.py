"""Streaming evaluation: decode each image once, feed every metric of a protocol from it.

Pairs are read in batches by a small thread pool (PIL, cv2 and numpy release the GIL, so
decoding overlaps the networks without the memory of worker processes); at most ``ahead``
batches are in flight, FID features go into running float64 statistics, and only one float
per image and metric is kept, so memory does not grow with the number of images beyond that.
Every present pair is scored; nothing is dropped unless the protocol explicitly emulates a
reference script's batch remainder drop, and then the result says how many.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, ConfigError, DataError, MissingWeightError
from bench.memory import release_free_memory
from bench.metrics import preprocess, refstats, weights
from bench.metrics.bootstrap import bootstrap_ci
from bench.metrics.fid import RunningStats, frechet_distance
from bench.metrics.inception import EXTRACTORS, FEATURE_DIMS, build_extractor
from bench.metrics.lpips_metric import BACKBONE_WEIGHT, Lpips, head_path
from bench.metrics.protocols import Protocol, fid_metric_name, lpips_metric_name
from bench.metrics.psnr import psnr
from bench.metrics.ssim import ssim_gauss_dr, ssim_w51

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


@dataclass
class Networks:
    extractors: dict[str, torch.nn.Module] = field(default_factory=dict)
    lpips: dict[str, Lpips] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    unverified: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric name -> reason


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
    nets = Networks()
    for ext in protocol.fid_extractors if extractors is None else extractors:
        path = _resolve(EXTRACTORS[ext], opts, nets, fid_metric_name(ext, protocol.reference_split))
        if path is not None:
            nets.extractors[ext] = build_extractor(ext, path)
    if extractors is None:
        for net in protocol.lpips_nets:
            path = _resolve(BACKBONE_WEIGHT[net], opts, nets, lpips_metric_name(net))
            if path is not None:
                nets.lpips[net] = Lpips(net, path)
                head = head_path(net)
                nets.weights[f"lpips/v0.1/{head.name}"] = weights.sha256_file(head)
    return nets


def _batches(n: int, load: Callable[[int], Any], batch_size: int, workers: int, ahead: int) -> Iterator[list]:
    """Yield lists of ``load(i)`` in index order, decoding up to ``ahead`` batches in advance."""
    starts = iter(range(0, n, batch_size))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()

        def submit() -> None:
            s = next(starts, None)
            if s is not None:
                pending.append([pool.submit(load, i) for i in range(s, min(s + batch_size, n))])

        for _ in range(max(1, ahead)):
            submit()
        try:
            while pending:
                futures = pending.popleft()
                submit()
                yield [f.result() for f in futures]
        finally:
            for futures in pending:
                for f in futures:
                    f.cancel()


def _progress(it: Iterator, total: int, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, unit="batch")


def _metric_tensor(views: list[np.ndarray | None], u8: torch.Tensor) -> torch.Tensor:
    """float32 (B,3,H,W) 0..255 view for Inception/LPIPS: the cv2 views if any, else the eval view."""
    if views[0] is None:
        return u8.to(torch.float32)
    return torch.stack([preprocess.to_chw(v) for v in views])


# ----------------------------------------------------------------------------------------- reference


def reference_stats(
    protocol: Protocol, root: str | Path, nets: Networks, opts: EvalOptions, only: Sequence[str] | None = None
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Compute (streaming) the reference statistics of the extractors in ``only`` (default: all loaded)."""
    files = refstats.reference_files(root, protocol)
    list_hash = refstats.file_list_hash(files)
    todo = [e for e in (only if only is not None else nets.extractors) if e in nets.extractors]
    running = {e: RunningStats(FEATURE_DIMS) for e in todo}
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size

    def load(i: int) -> tuple[torch.Tensor, np.ndarray | None]:
        img = preprocess.resize_uint8(
            preprocess.decode(files[i], generated=False), size, protocol.gt_resize, files[i]
        )
        return preprocess.to_chw(img), (preprocess.metric_view(img, cv2_size) if cv2_size else None)

    t0 = time.perf_counter()
    n_batches = -(-len(files) // opts.batch_size)
    if todo:
        it = _batches(len(files), load, opts.batch_size, opts.workers, opts.ahead)
        for batch in _progress(it, n_batches, f"reference {protocol.name}", opts.progress):
            u8 = torch.stack([b[0] for b in batch])
            x = _metric_tensor([b[1] for b in batch], u8) / 255.0
            for ext in todo:
                running[ext].update(nets.extractors[ext](x))
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


def list_pairs(
    images_dir: Path, pairs: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """[(pair id, source, target)] present as PNG, and the missing pair ids (in pairs order)."""
    from bench.data.deepfashion import pair_id

    present, missing, seen = [], [], set()
    for src, tgt in pairs:
        pid = pair_id(src, tgt)
        if pid in seen:
            continue
        seen.add(pid)
        if (images_dir / f"{pid}.png").is_file():
            present.append((pid, src, tgt))
        else:
            missing.append(pid)
    return present, missing


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


def evaluate(
    protocol: Protocol,
    images_dir: str | Path,
    pairs: Sequence[tuple[str, str]],
    gt_dir: str | Path,
    dataset_root: str | Path | None,
    opts: EvalOptions | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score ``images_dir`` against ``gt_dir`` under ``protocol``; returns (metrics record, per-image rows)."""
    from PIL import Image

    opts = opts or EvalOptions()
    images_dir, gt_dir = Path(images_dir), Path(gt_dir)
    t_start = time.perf_counter()
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: generated image folder not found; run `pgpis generate` first")
    present, missing = list_pairs(images_dir, pairs)
    n_expected = len(present) + len(missing)  # unique pair ids (a repeated CSV row is one image)
    if missing and not opts.allow_missing:
        shown = ", ".join(missing[:20]) + (f", ... ({len(missing) - 20} more)" if len(missing) > 20 else "")
        raise DataError(
            f"{images_dir}: {len(missing)} of {n_expected} generated images are missing: {shown}. Finish the "
            "generation (rerun `pgpis generate`, it resumes) or pass --allow-missing to score the rest"
        )
    if not present:
        raise DataError(f"{images_dir}: none of the {len(pairs)} expected <pair_id>.png images is present")
    manifest = _read_manifest(images_dir)

    n = len(present)
    # Emulated remainder drop (PIDM): the last n % k pairs in name order are left out of FID and LPIPS.
    keep = np.ones(n, dtype=bool)
    dropped_ids: list[str] = []
    if protocol.drop_remainder:
        order = sorted(range(n), key=lambda i: present[i][0])
        n_keep = n // protocol.drop_remainder * protocol.drop_remainder
        for i in order[n_keep:]:
            keep[i] = False
            dropped_ids.append(present[i][0])

    nets = load_networks(protocol, opts)
    refs: dict[str, refstats.RefStats] = {}
    ref_record: dict[str, Any] = {}
    if nets.extractors:
        refs, ref_record = obtain_reference_stats(protocol, dataset_root, nets, opts)
        release_free_memory()  # the reference pass's activations and covariance temporaries

    first = images_dir / f"{present[0][0]}.png"
    with Image.open(first) as im:
        gen_size = (im.height, im.width)
    size, cv2_size = protocol.eval_size, protocol.cv2_metric_size

    def load(i: int) -> tuple:
        pid, _src, tgt = present[i]
        gpath = images_dir / f"{pid}.png"
        gen = preprocess.decode(gpath, generated=True)
        if gen.shape[:2] != gen_size:
            raise DataError(
                f"{gpath}: wrong size {gen.shape[0]}x{gen.shape[1]}; the folder's images are {gen_size[0]}x"
                f"{gen_size[1]} ({first.name}). Regenerate it at the folder's size"
            )
        gen = preprocess.resize_uint8(gen, size, protocol.gen_resize, gpath)
        gt = preprocess.resize_uint8(
            preprocess.decode(gt_dir / tgt, generated=False), size, protocol.gt_resize, gt_dir / tgt
        )
        gm = preprocess.metric_view(gen, cv2_size) if cv2_size else None
        tm = preprocess.metric_view(gt, cv2_size) if cv2_size else None
        return preprocess.to_chw(gen), preprocess.to_chw(gt), gm, tm

    per_image: dict[str, np.ndarray] = {}
    names = [lpips_metric_name(net) for net in nets.lpips] + list(protocol.ssim) + list(protocol.psnr)
    for name in names:
        per_image[name] = np.full(n, np.nan)
    running = {e: RunningStats(FEATURE_DIMS) for e in nets.extractors}

    t_gen = time.perf_counter()
    pos = 0
    it = _batches(n, load, opts.batch_size, opts.workers, opts.ahead)
    for batch in _progress(it, -(-n // opts.batch_size), f"evaluate {protocol.name}", opts.progress):
        # Sub-chunks of NET_CHUNK pairs: the float views and network activations of a whole batch
        # would dominate peak RSS; every value is per image (FID sums are order-independent).
        for j in range(0, len(batch), NET_CHUNK):
            chunk = batch[j : j + NET_CHUNK]
            _score_chunk(protocol, nets, chunk, keep, running, per_image, slice(pos, pos + len(chunk)))
            pos += len(chunk)
        del batch
    gen_seconds = time.perf_counter() - t_gen
    # The networks (~120 MB of weights) are done; free them before the 2048-d Frechet distance,
    # whose float64 temporaries (~150 MB) would otherwise stack on top of them (peak RSS).
    nets.extractors = dict.fromkeys(nets.extractors)
    nets.lpips.clear()
    release_free_memory()

    metrics: dict[str, float] = {}
    unavailable = dict(nets.unavailable)
    for ext in nets.extractors:
        name = fid_metric_name(ext, protocol.reference_split)
        try:
            mu, sigma = running[ext].finalize("generated images")
            metrics[name] = frechet_distance(mu, sigma, refs[ext].mu, refs[ext].sigma)
        except DataError as err:
            if opts.strict:
                raise
            unavailable[name] = str(err)

    ci95: dict[str, list[float]] = {}
    undefined: dict[str, dict[str, Any]] = {}
    for name, values in per_image.items():
        use = keep if name.startswith("lpips") and "lpips" in protocol.drop_applies_to else np.ones(n, bool)
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

    record = {
        "protocol": protocol.name,
        "protocol_settings": protocol.settings(),
        "method": (manifest or {}).get("method"),
        "images": str(images_dir),
        "num_images": n,
        "num_expected": n_expected,
        "missing": missing,
        "allow_missing": bool(opts.allow_missing),
        "num_fid_images": int(keep.sum()),
        "dropped": len(dropped_ids),
        "dropped_detail": {
            "emulated_batch": protocol.drop_remainder,
            "applies_to": list(protocol.drop_applies_to) if protocol.drop_remainder else [],
            "pair_ids": dropped_ids,
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
        "timing_seconds": {"generated_pass": gen_seconds, "total": time.perf_counter() - t_start},
        "versions": package_versions(),
        "git": git_hash(),
    }
    rows = [{"pair_id": present[i][0], **{k: float(v[i]) for k, v in per_image.items()}} for i in range(n)]
    return record, rows


def _score_chunk(
    protocol: Protocol,
    nets: Networks,
    chunk: list,
    keep: np.ndarray,
    running: dict[str, RunningStats],
    per_image: dict[str, np.ndarray],
    sl: slice,
) -> None:
    """FID features, LPIPS, SSIM and PSNR of a few decoded pairs (rows ``sl`` of the outputs)."""
    kb = torch.from_numpy(keep[sl])
    gen_u8 = torch.stack([x[0] for x in chunk])
    gt_u8 = torch.stack([x[1] for x in chunk])
    gen_m = _metric_tensor([x[2] for x in chunk], gen_u8)
    for ext, model in nets.extractors.items():
        if kb.any():
            running[ext].update(model(gen_m[kb] / 255.0))
    if nets.lpips:
        gt_m = _metric_tensor([x[3] for x in chunk], gt_u8)
        if protocol.lpips_input == "unit":
            a, c = 2 * (gen_m / 255.0) - 1, 2 * (gt_m / 255.0) - 1  # lpips normalize=True on [0, 1]
        else:
            a, c = gen_m / 127.5 - 1, gt_m / 127.5 - 1
        del gt_m
        for net, model in nets.lpips.items():
            per_image[lpips_metric_name(net)][sl] = model(a, c).numpy()
        del a, c
    del gen_m
    _score_pixels(protocol, gen_u8, gt_u8, per_image, sl)


NET_CHUNK = 8  # pairs whose float views and activations are alive at once
PIXEL_CHUNK = 4  # images per SSIM call: the 5 filtered float32 maps and temporaries, ~60 MB at 4


def _score_pixels(
    protocol: Protocol, gen_u8: torch.Tensor, gt_u8: torch.Tensor, out: dict[str, np.ndarray], sl: slice
) -> None:
    """SSIM and PSNR variants on the eval views, in chunks of ``PIXEL_CHUNK`` images."""
    for i in range(0, gen_u8.shape[0], PIXEL_CHUNK):
        j = min(i + PIXEL_CHUNK, gen_u8.shape[0])
        _score_pixels_chunk(protocol, gen_u8[i:j], gt_u8[i:j], out, slice(sl.start + i, sl.start + j))


def _score_pixels_chunk(
    protocol: Protocol, gen_u8: torch.Tensor, gt_u8: torch.Tensor, out: dict[str, np.ndarray], sl: slice
) -> None:
    """SSIM and PSNR variants on the eval views, as the reference scripts feed them (float32 x/255)."""
    g01, t01 = gen_u8.to(torch.float32) / 255.0, gt_u8.to(torch.float32) / 255.0
    padded: tuple[torch.Tensor, torch.Tensor] | None = None
    for name in (*protocol.ssim, *protocol.psnr):
        if name.endswith("_pad40"):
            if padded is None:
                padded = (
                    preprocess.pad40(gen_u8.to(torch.float32)) / 255.0,
                    preprocess.pad40(gt_u8.to(torch.float32)) / 255.0,
                )
            g, t = padded
        else:
            g, t = g01, t01
        base = name.removesuffix("_pad40")
        if base == "ssim_w51":
            v = ssim_w51(t, g)
        elif base == "ssim_g15_dr":
            v = ssim_gauss_dr(t, g, 1.5)
        elif base == "ssim_g12_dr":
            v = ssim_gauss_dr(t, g, 1.2)
        elif base == "psnr":
            v = psnr(t, g, data_range=1.0)
        else:
            raise ValueError(f"unknown pixel metric {name!r}")
        out[name][sl] = v.numpy()


def write_outputs(
    record: dict[str, Any], rows: list[dict[str, Any]], out_json: Path | None, out_csv: Path | None
) -> None:
    """metrics.json and per_image.csv, atomically; non-finite per-image values are empty cells."""
    import csv
    import math

    from bench.io import atomic_path, write_json_atomic

    if out_json is not None:
        write_json_atomic(out_json, record)
    if out_csv is not None:
        cols = list(rows[0].keys()) if rows else ["pair_id"]
        with atomic_path(out_csv) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(cols)
                for r in rows:
                    w.writerow(
                        [
                            r[c] if c == "pair_id" else ("" if not math.isfinite(r[c]) else repr(r[c]))
                            for c in cols
                        ]
                    )
