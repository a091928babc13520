"""How an evaluation runs (not what it computes: that is the protocol's): one options record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.metrics.images_folder import DEFAULT_PATTERN


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
