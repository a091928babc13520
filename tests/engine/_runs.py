"""Folders of "generated" images for the report tests: one flat colour per run, so every cell of a
figure or a study tells which run (or the ground truth) it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.deepfashion import DeepFashionDataset, pair_id


def fake_run(root: Path, folder: Path, colour: tuple[int, int, int], skip: int = 0) -> Path:
    """One PNG per test pair of ``root`` (the last ``skip`` pairs left out) and a manifest."""
    folder.mkdir(parents=True)
    pairs = DeepFashionDataset(root).pairs
    for src, tgt in pairs[: len(pairs) - skip]:
        Image.fromarray(np.full((256, 176, 3), colour, np.uint8)).save(folder / f"{pair_id(src, tgt)}.png")
    (folder / "manifest.json").write_text(json.dumps({"settings": {"method": {"method": folder.name}}}))
    return folder


COLOURS = {"alpha": (250, 10, 10), "beta": (10, 250, 10), "gamma": (10, 10, 250)}


def fake_runs(root: Path, parent: Path, names: tuple[str, ...] = ("alpha", "beta", "gamma")) -> Path:
    for name in names:
        fake_run(root, parent / name, COLOURS[name])
    return parent
