"""A tiny dataset root in DeepFashion's on-disk format, drawn here so the engine tests need no
other part of the suite: stick persons with per-identity colours at a few real-looking poses.

Imported by the engine tests as ``_engine_data`` (a unique name: ``conftest`` is taken)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# (y, x) in the 256x176 annotation frame, OpenPose COCO-18; -1 missing.
STAND = [
    (40, 88), (62, 88), (64, 62), (100, 56), (134, 54), (64, 114), (100, 120), (134, 122), (132, 72),
    (180, 70), (226, 70), (132, 104), (180, 106), (226, 106), (34, 82), (34, 94), (38, 76), (38, 100),
]  # fmt: skip
BONES = [
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
]


def pose_variants() -> list[np.ndarray]:
    """Standing, arms raised, shifted right, and legs apart with a missing left wrist."""
    base = np.array(STAND, dtype=np.int64)
    raised = base.copy()
    raised[3], raised[4], raised[6], raised[7] = (44, 40), (16, 36), (44, 136), (16, 140)
    shifted = base.copy()
    shifted[:, 1] += 18
    apart = base.copy()
    apart[9], apart[10], apart[12], apart[13] = (178, 56), (222, 44), (178, 120), (222, 132)
    apart[7] = (-1, -1)
    return [base, raised, shifted, apart]


def draw_person(kps: np.ndarray, colours: dict[str, tuple[int, int, int]]) -> np.ndarray:
    img = np.full((256, 176, 3), 235, np.uint8)
    pt = {i: (int(x), int(y)) for i, (y, x) in enumerate(kps) if y >= 0}
    torso = [pt[j] for j in (2, 5, 11, 8) if j in pt]
    cv2.fillConvexPoly(img, np.array(torso, np.int32), colours["shirt"])
    for a, b in BONES:
        if a in pt and b in pt:
            part = "trousers" if a in (8, 9, 11, 12) else "shirt" if a in (1, 2, 5) else "skin"
            cv2.line(img, pt[a], pt[b], colours[part], 14 if part != "skin" else 10, cv2.LINE_AA)
    cv2.circle(img, pt[0], 16, colours["skin"], -1, cv2.LINE_AA)
    cv2.circle(img, (pt[0][0], pt[0][1] - 10), 12, colours["hair"], -1, cv2.LINE_AA)
    return img


def write_dataset(root: Path, identities: int = 2) -> Path:
    """Write ``root`` with ``identities`` persons x 4 poses and all ordered pairs within a person."""
    rng = np.random.default_rng(0)
    (root / "test_highres").mkdir(parents=True)
    names, rows, pairs = [], [], []
    for ident in range(identities):
        colours = {
            k: tuple(int(v) for v in rng.integers(0, 200, 3)) for k in ("shirt", "trousers", "skin", "hair")
        }
        group = []
        for view, kps in enumerate(pose_variants()):
            name = f"fashionWOMENDressesid{ident + 1:08d}01_{view + 1}front.jpg"
            cv2.imwrite(str(root / "test_highres" / name), draw_person(kps, colours)[:, :, ::-1])
            rows.append(f"{name}:{list(map(int, kps[:, 0]))}:{list(map(int, kps[:, 1]))}")
            group.append(name)
        names += group
        pairs += [f"{a},{b}" for a in group for b in group if a != b]
    (root / "test.lst").write_text("\n".join(names) + "\n")
    (root / "fasion-resize-annotation-test.csv").write_text(
        "name:keypoints_y:keypoints_x\n" + "\n".join(rows) + "\n"
    )
    (root / "fasion-resize-pairs-test.csv").write_text("from,to\n" + "\n".join(pairs) + "\n")
    return root
