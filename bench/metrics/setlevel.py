"""Set-level scoring with no dataset: two folders, or a folder and cached statistics (``pgpis fid``).

Like ``python -m pytorch_fid DIR1 DIR2``, but under a named protocol: each set is decoded and
resized by the protocol's rules (the images set as generated images, a reference folder as the
reference images), fed to the protocol's extractors on the device, and its statistics cached
under a name encoding the files (names and sizes), the settings and the weights, so a second run
over the same folder reads them back. A reference ``.npz`` (``pgpis refstats`` or pytorch-fid's
mu/sigma) is used as given; its metadata, when present, must name an extractor of the protocol.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.memory import release_free_memory
from bench.metrics import fid, networks, refstats
from bench.metrics.device import device_name
from bench.metrics.engine import read_manifest
from bench.metrics.fid import frechet_distance
from bench.metrics.images_folder import SUFFIXES
from bench.metrics.networks import Networks, load_networks
from bench.metrics.options import EvalOptions
from bench.metrics.protocols import Protocol, fid_metric_name
from bench.metrics.provenance import provenance
from bench.metrics.reference import stream_features
from bench.metrics.results_schema import SCHEMA_VERSION


def folder_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: {what} folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if len(files) < 2:
        raise DataError(
            f"{folder}: {len(files)} .png/.jpg/.jpeg/.webp image(s); FID needs at least 2 {what} images"
        )
    return files


def _set_settings(protocol: Protocol, ext: str, role: str) -> dict[str, Any]:
    rule = protocol.gen_resize if role == "images" else protocol.gt_resize
    return {
        "eval_size": list(protocol.eval_size),
        "resize": rule,
        "cv2_metric_size": list(protocol.cv2_metric_size) if protocol.cv2_metric_size else None,
        "extractor": ext,
        "role": role,
    }


def folder_stats(
    protocol: Protocol, folder: Path, role: str, nets: Networks, opts: EvalOptions
) -> tuple[dict[str, refstats.RefStats], dict[str, Any]]:
    """Statistics of every loaded extractor for an image folder, from the cache when it has them."""
    files = folder_files(folder, role)
    list_hash = refstats.file_list_hash(files)
    cache_dir = opts.cache_dir or refstats.default_cache_dir()
    found: dict[str, refstats.RefStats] = {}
    paths: dict[str, Path] = {}
    for ext in nets.extractors:
        settings = _set_settings(protocol, ext, role)
        wsha = nets.weights[networks.extractor_weight_file(ext)]
        set_hash = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
        paths[ext] = (
            cache_dir / f"folder_{ext}_n{len(files)}_files{list_hash[:10]}_set{set_hash}_w{wsha[:8]}.npz"
        )
        meta = {
            "format": refstats.FORMAT_VERSION,
            "folder": str(folder),
            "settings": settings,
            "weights_sha256": wsha,
            "num_images": len(files),
            "file_list_sha256": list_hash,
        }
        if opts.use_cache and paths[ext].is_file():
            st = refstats.load(paths[ext])
            if st.meta and all(
                st.meta.get(k) == meta[k] for k in ("settings", "weights_sha256", "file_list_sha256")
            ):
                found[ext] = st
                continue
        found[ext] = refstats.RefStats(mu=None, sigma=None, meta=meta)
    todo = [e for e, st in found.items() if st.mu is None]
    t0 = time.perf_counter()
    rule = protocol.gen_resize if role == "images" else protocol.gt_resize
    running = stream_features(
        protocol, files, nets, opts, todo, rule, role == "images", f"{role} {protocol.name}"
    )
    for ext in todo:
        fs = running[ext].finalize(f"{role} images")
        found[ext].mu, found[ext].sigma = fs.mu, fs.sigma
        if opts.use_cache:
            refstats.save(paths[ext], found[ext])
    record = {
        "folder": str(folder),
        "num_images": len(files),
        "file_list_sha256": list_hash,
        "cached": {ext: ext not in todo for ext in found},
        "cache_files": {ext: str(p) for ext, p in paths.items()} if opts.use_cache else {},
        "seconds": time.perf_counter() - t0,
    }
    return found, record


def _npz_stats(protocol: Protocol, path: Path, nets: Networks) -> tuple[dict[str, refstats.RefStats], str]:
    st = refstats.load(path)
    if st.unavailable:
        raise ConfigError(f"{path}: placeholder statistics without values ({st.unavailable})")
    meta = st.meta or {}
    ext = meta.get("extractor") or (meta.get("settings") or {}).get("extractor")
    if ext is None:
        if len(protocol.fid_extractors) != 1:
            raise ConfigError(
                f"{path}: statistics without metadata are ambiguous for {protocol.name}'s extractors"
            )
        ext = protocol.fid_extractors[0]
    if ext not in protocol.fid_extractors:
        raise ConfigError(
            f"{path}: statistics of extractor {ext!r}, but protocol {protocol.name} uses "
            f"{', '.join(protocol.fid_extractors)}; choose the protocol the statistics were made with"
        )
    wsha = meta.get("weights_sha256")
    ours = nets.weights.get(networks.extractor_weight_file(ext))
    if wsha and ours and wsha != ours:
        raise ConfigError(
            f"{path}: statistics made with weights {wsha[:12]}, these are {ours[:12]}; recompute them"
        )
    split = (meta.get("reference_settings") or {}).get("reference_split") or "npz"
    return {ext: st}, split


def score_sets(protocol: Protocol, images: Path, reference: Path, opts: EvalOptions) -> dict[str, Any]:
    """FID (every extractor of the protocol) between ``images`` and ``reference`` (folder or .npz)."""
    t_start = time.perf_counter()
    images_files = folder_files(images, "images")
    nets = load_networks(protocol, opts, extractors=protocol.fid_extractors)
    if reference.suffix.lower() == ".npz":
        ref, split = _npz_stats(protocol, reference, nets)
        ref_record: dict[str, Any] = {
            "file": str(reference),
            "imported_without_metadata": next(iter(ref.values())).imported,
        }
        n_ref = (next(iter(ref.values())).meta or {}).get("num_images")
    else:
        ref, ref_record = folder_stats(protocol, reference, "reference", nets, opts)
        split, n_ref = "folder", ref_record["num_images"]
    gen, gen_record = folder_stats(protocol, images, "images", nets, opts)
    nets.extractors = dict.fromkeys(nets.extractors)
    release_free_memory()
    metrics: dict[str, float] = {}
    unavailable = dict(nets.unavailable)
    for ext in nets.extractors:
        name = fid_metric_name(ext, split)
        if ext not in ref:
            unavailable[name] = f"{reference}: holds statistics of another extractor"
            continue
        try:
            with fid.route(protocol.fid_route):
                metrics[name] = frechet_distance(gen[ext].mu, gen[ext].sigma, ref[ext].mu, ref[ext].sigma)
        except DataError as err:
            if opts.strict:
                raise
            unavailable[name] = str(err)
    from bench.versions import git_hash, package_versions

    manifest = read_manifest(images)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "set",
        "protocol": protocol.name,
        "protocol_settings": protocol.settings(),
        "method": (manifest or {}).get("method"),
        "provenance": provenance(manifest, images),
        "images": str(images),
        "reference": str(reference),
        "num_images": len(images_files),
        "num_reference": n_ref,
        "metrics": metrics,
        "unavailable": unavailable,
        "weights": nets.weights,
        "weights_unverified": nets.unverified,
        "refstats": {"images": gen_record, "reference": ref_record},
        "device": device_name(nets.device),
        "dtype": "float32",
        "timing_seconds": {"total": time.perf_counter() - t_start},
        "versions": package_versions(),
        "git": git_hash(),
    }
