"""Fixtures of the data-layer tests: a tiny dataset root in DeepFashion's on-disk format, made in tmp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Three images of one look group; keypoints (y, x) in the 256x176 frame, -1 missing.
TINY_NAMES = [
    "fashionWOMENDressesid9000000101_1front.jpg",
    "fashionWOMENDressesid9000000101_2side.jpg",
    "fashionWOMENDressesid9000000101_3back.jpg",
]


def tiny_keypoints(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    kps = np.stack([rng.integers(0, 256, 18), rng.integers(0, 176, 18)], axis=1).astype(np.int32)
    kps[9 + i] = -1  # one missing point per image, at a different index each
    return kps


def write_tiny_root(root: Path, size: tuple[int, int] = (64, 44)) -> Path:
    """Write a 3-image, 6-pair test split (and a copy as train split) under ``root``."""
    for split in ("train", "test"):
        (root / f"{split}_highres").mkdir(parents=True, exist_ok=True)
        pairs = ["from,to"] + [f"{a},{b}" for a in TINY_NAMES for b in TINY_NAMES if a != b]
        (root / f"fasion-resize-pairs-{split}.csv").write_text("\n".join(pairs) + "\n")
        rows = ["name:keypoints_y:keypoints_x"]
        for i, name in enumerate(TINY_NAMES):
            kps = tiny_keypoints(i)
            rows.append(f"{name}: {list(map(int, kps[:, 0]))}: {list(map(int, kps[:, 1]))}")
        (root / f"fasion-resize-annotation-{split}.csv").write_text("\n".join(rows) + "\n")
        (root / f"{split}.lst").write_text("\n".join(TINY_NAMES) + "\n")
        for i, name in enumerate(TINY_NAMES):
            pixels = np.full((*size, 3), 40 * (i + 1), dtype=np.uint8)
            pixels[: size[0] // 2, :, 0] = 250  # top half reddish, so resizes are not trivially flat
            Image.fromarray(pixels).save(root / f"{split}_highres" / name, quality=95)
    return root


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return write_tiny_root(tmp_path / "tiny")
