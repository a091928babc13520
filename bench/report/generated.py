"""Folders of generated images (``pgpis generate`` output) as the figures and the user study see them.

A run is a folder of ``<pair id>.png`` files; its label is the folder name unless given. Figures and
user-study sheets show the same pairs for every run, so a pair is only usable when every run has
its image: an incomplete run is refused with the missing pair ids (``allow_missing`` restricts the
choice to the pairs every run has, and the result says how many were left out).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from bench.data.deepfashion import DeepFashionDataset, pair_id
from bench.errors import ConfigError, DataError


@dataclass(frozen=True)
class GeneratedRun:
    label: str
    folder: Path

    def image(self, pid: str) -> Path:
        return self.folder / f"{pid}.png"


@dataclass(frozen=True)
class Pair:
    pid: str
    source: str  # image names in the split's image folder
    target: str


def expand_generated(paths: list[str | os.PathLike], labels: list[str] | None = None) -> list[GeneratedRun]:
    """Folders of generated PNGs, or parents of such folders (each subfolder holding a
    ``manifest.json``, in name order, e.g. ``reports/generated``)."""
    folders: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise DataError(
                f"{path}: folder of generated images not found; run `pgpis generate --out {path}` first"
            )
        if (path / "manifest.json").is_file() or any(path.glob("*.png")):
            folders.append(path)
            continue
        runs = sorted(p for p in path.iterdir() if p.is_dir() and (p / "manifest.json").is_file())
        if not runs:
            raise DataError(
                f"{path}: holds neither generated PNGs nor run folders with a manifest.json; "
                "pass the folders written by `pgpis generate --out`"
            )
        folders.extend(runs)
    if labels is not None and len(labels) != len(folders):
        raise ConfigError(
            f"--labels: {len(labels)} label(s) for {len(folders)} run folder(s): {', '.join(map(str, folders))}"
        )
    names = labels or [p.name for p in folders]
    if len(set(names)) != len(names):
        raise ConfigError(f"run labels must be unique, got {', '.join(names)}; pass --labels")
    return [GeneratedRun(label, folder) for label, folder in zip(names, folders)]


def distinct_pairs(dataset: DeepFashionDataset) -> list[Pair]:
    """The split's distinct pairs in file order (a repeated CSV row is one image, as in evaluate)."""
    pairs: dict[str, Pair] = {}
    for src, tgt in dataset.pairs:
        pid = pair_id(src, tgt)
        pairs.setdefault(pid, Pair(pid, src, tgt))
    return list(pairs.values())


def complete_pairs(
    dataset: DeepFashionDataset, runs: list[GeneratedRun], allow_missing: bool = False
) -> tuple[list[Pair], int]:
    """Pairs that every run has an image for, and how many pairs were left out for a missing image."""
    if not runs:
        raise ConfigError("no runs given: pass at least one folder of generated images")
    pairs = distinct_pairs(dataset)
    usable = [p for p in pairs if all(run.image(p.pid).is_file() for run in runs)]
    left_out = len(pairs) - len(usable)
    if left_out and not allow_missing:
        problems = []
        for run in runs:
            missing = [p.pid for p in pairs if not run.image(p.pid).is_file()]
            if missing:
                shown = ", ".join(missing[:5]) + (
                    f", ... ({len(missing) - 5} more)" if len(missing) > 5 else ""
                )
                problems.append(f"{run.folder}: {len(missing)} of {len(pairs)} images missing ({shown})")
        raise DataError(
            "; ".join(problems) + ". Finish the generation (rerun `pgpis generate`, it resumes) "
            "or pass --allow-missing to choose among the pairs every run has"
        )
    if not usable:
        raise DataError(f"no pair of {dataset.pairs_path} has an image in every run folder")
    return usable, left_out


def choose_pairs(usable: list[Pair], count: int, seed: int, wanted: list[str] | None = None) -> list[Pair]:
    """``wanted`` pair ids in that order, else ``count`` pairs drawn with ``seed`` (file order kept),
    so a figure or a study is the same on every machine."""
    if wanted:
        by_id = {p.pid: p for p in usable}
        unknown = [pid for pid in wanted if pid not in by_id]
        if unknown:
            raise ConfigError(
                f"--pairs: {', '.join(unknown)} not among the test pairs that every run has an image for"
            )
        return [by_id[pid] for pid in wanted]
    if count < 1:
        raise ConfigError(f"the number of pairs must be at least 1, got {count}")
    if count > len(usable):
        raise ConfigError(
            f"asked for {count} pairs, but only {len(usable)} test pairs have an image in every run"
        )
    chosen = set(random.Random(seed).sample(range(len(usable)), count))
    return [p for i, p in enumerate(usable) if i in chosen]
