"""FID reference statistics: which files, under which name they are cached, how they are checked.

A statistics file is an ``.npz`` holding ``mu`` and ``sigma`` (exactly pytorch-fid's format, so
its tools read ours), ``features`` (every feature vector, float32) when a metric of the protocol
needs them (KID, precision/recall), plus ``meta``: a JSON string with the protocol's reference settings, the
extractor and the sha256 of its weights, the number of images and a hash of the file list
(names and byte sizes). Its canonical name encodes all of these, so a changed setting or file
list can never pick up a stale file; a file given explicitly is checked against them and
refused on mismatch. A plain pytorch-fid ``.npz`` (mu, sigma only) is accepted and marked as
imported with unverified settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError, DataError
from bench.io import atomic_path
from bench.metrics.protocols import Protocol

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("PGPIS_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "pgpis"
    return base / "refstats"


def reference_files(root: str | Path, protocol: Protocol) -> list[Path]:
    """The FID reference images of ``root`` under ``protocol``, in a fixed order."""
    from bench.data.deepfashion import image_dir, list_file, read_list

    folder = image_dir(root, protocol.reference_split)
    if not folder.is_dir():
        raise DataError(
            f"{folder}: reference image folder not found; prepare the dataset (`pgpis prepare`/`synth`)"
        )
    if protocol.reference_listing == "glob":
        files = sorted(folder.glob("*.jpg"))
    elif protocol.reference_listing == "lst":
        names = read_list(list_file(root, protocol.reference_split))
        files = [folder / n for n in names]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DataError(
                f"{folder}: {len(missing)} images listed in {protocol.reference_split}.lst are missing, e.g. "
                f"{', '.join(missing[:5])}; complete the folder"
            )
    else:
        raise ValueError(f"unknown reference listing {protocol.reference_listing!r}")
    if not files:
        raise DataError(
            f"{folder}: no reference images found ({protocol.reference_listing}); prepare the dataset"
        )
    if protocol.drop_remainder:
        # PIDM/GFLA read the reference folder unsorted and drop the tail of that order.
        files = [files[i] for i in loader_order(folder, files)]
        files = files[: len(files) // protocol.drop_remainder * protocol.drop_remainder]
    return files


def loader_order(folder: Path, files: list[Path]) -> list[int]:
    """Indices of ``files`` in the order PIDM/GFLA's loaders read a folder: ``list(folder.glob("*.jpg")) +
    list(folder.glob("*.png"))``, i.e. directory order, JPEGs first (anything else last, as given)."""
    rank = {p.name: i for i, p in enumerate([*folder.glob("*.jpg"), *folder.glob("*.png")])}
    return sorted(range(len(files)), key=lambda i: (rank.get(files[i].name, len(rank)), i))


def file_list_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}\t{f.stat().st_size}\n".encode())
    return digest.hexdigest()


def canonical_name(protocol: Protocol, extractor: str, n: int, list_hash: str, weights_sha: str) -> str:
    drop = f"_drop{protocol.drop_remainder}" if protocol.drop_remainder else ""
    return (
        f"{protocol.name}_{extractor}_{protocol.reference_split}-{protocol.reference_listing}"
        f"_n{n}_files{list_hash[:10]}_set{protocol.reference_settings_hash(extractor)}_w{weights_sha[:8]}{drop}.npz"
    )


@dataclass
class RefStats:
    mu: np.ndarray | None  # None: a placeholder written when the extractor's weight was missing
    sigma: np.ndarray | None
    meta: dict[str, Any] | None
    path: Path | None = None
    vectors: np.ndarray | None = None  # (N, D) float32 feature vectors, when stored

    @property
    def imported(self) -> bool:
        return self.meta is None

    @property
    def unavailable(self) -> str | None:
        return (self.meta or {}).get("unavailable")


def make_meta(
    protocol: Protocol, extractor: str, files: list[Path], list_hash: str, weights_sha: str
) -> dict:
    return {
        "format": FORMAT_VERSION,
        "protocol": protocol.name,
        "reference_settings": protocol.reference_settings(extractor),
        "extractor": extractor,
        "weights_sha256": weights_sha,
        "num_images": len(files),
        "file_list_sha256": list_hash,
    }


def save(path: str | Path, stats: RefStats) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            extra = {} if stats.vectors is None else {"features": np.asarray(stats.vectors, np.float32)}
            np.savez(
                fh,
                mu=stats.mu,
                sigma=stats.sigma,
                meta=np.array(json.dumps(stats.meta, sort_keys=True)),
                **extra,
            )


def load(path: str | Path) -> RefStats:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"])) if "meta" in data.files else None
            if meta is not None and meta.get("unavailable") and "mu" not in data.files:
                return RefStats(mu=None, sigma=None, meta=meta, path=path)
            mu, sigma = np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)
            vectors = np.asarray(data["features"], np.float32) if "features" in data.files else None
    except FileNotFoundError:
        raise DataError(f"{path}: reference statistics not found; make them with `pgpis refstats`") from None
    except (KeyError, ValueError, OSError) as err:
        raise DataError(
            f"{path}: not a statistics .npz with 'mu' and 'sigma' ({err}); recreate it with `pgpis refstats`"
        ) from None
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise DataError(
            f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together; recreate the file"
        )
    if vectors is not None and (vectors.ndim != 2 or vectors.shape[1] != mu.size):
        raise DataError(f"{path}: features {vectors.shape} do not fit mu {mu.shape}; recreate the file")
    return RefStats(mu=mu, sigma=sigma, meta=meta, path=path, vectors=vectors)


def check(stats: RefStats, expected: dict[str, Any]) -> None:
    """Refuse statistics whose metadata differ from what this evaluation would compute."""
    if stats.meta is None:
        return
    diffs = [
        k
        for k in ("reference_settings", "extractor", "weights_sha256", "num_images", "file_list_sha256")
        if stats.meta.get(k) != expected.get(k)
    ]
    if diffs:
        detail = "; ".join(
            f"{k}: file has {stats.meta.get(k)!r}, expected {expected.get(k)!r}" for k in diffs
        )
        raise ConfigError(
            f"{stats.path}: reference statistics do not match this evaluation ({detail}); rerun `pgpis refstats` "
            "for this protocol and dataset"
        )
