"""Pose maps from OpenPose COCO-18 keypoints, as the official CFLD dataset code builds them.

Keypoints are (18, 2) arrays of (y, x) in the annotation ``frame`` (256x176 for DeepFashion);
-1 marks a missing point. ``cfld21`` reproduces ``datasets/deepfashion.py: build_pose_img`` of
YanzuoLu/CFLD bit for bit (skeleton /255 first, then the 18 Gaussian heatmaps), including its
two different roundings: heatmap centres are ``int(y / frame_h * H)``, skeleton points
``int(y * (H / frame_h))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.data.keypoints import BONES, MISSING, NUM_KEYPOINTS
from bench.errors import DataError

FRAME: tuple[int, int] = (256, 176)
KINDS: tuple[str, ...] = ("heatmaps18", "skeleton3", "cfld21")

# Colours (RGB) of the official pose_utils.py: one per bone, one per joint.
BONE_COLORS: tuple[tuple[int, int, int], ...] = (
    (153, 0, 0), (153, 51, 0), (153, 102, 0), (153, 153, 0), (102, 153, 0), (51, 153, 0), (0, 153, 0),
    (0, 153, 51), (0, 153, 102), (0, 153, 153), (0, 102, 153), (0, 51, 153), (0, 0, 153), (51, 0, 153),
    (102, 0, 153), (153, 0, 153), (153, 0, 102),
)  # fmt: skip
JOINT_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
LINE_THICKNESS = 2  # official draw_pose_from_cords(radius=2): lines of width 2, joints of radius 3


def _as_keypoints(kps: Any) -> np.ndarray:
    arr = np.asarray(kps.cpu() if hasattr(kps, "cpu") else kps)
    if arr.shape != (NUM_KEYPOINTS, 2):
        raise DataError(f"pose map: keypoints must have shape (18, 2) of (y, x), got {arr.shape}")
    return arr


def _missing(point: np.ndarray) -> bool:
    return bool(point[0] == MISSING or point[1] == MISSING)


def rescale_keypoints(kps: Any, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """(18,2) (y,x) from frame ``from_size`` (H,W) to ``to_size``; missing points stay -1."""
    arr = _as_keypoints(kps).astype(np.float64)
    scale = np.array([to_size[0] / from_size[0], to_size[1] / from_size[1]])
    missing = (arr[:, 0] == MISSING) | (arr[:, 1] == MISSING)
    out = arr * scale
    out[missing] = MISSING
    return out


def heatmaps(
    kps: Any, size: tuple[int, int], frame: tuple[int, int] = FRAME, sigma: float = 6.0
) -> np.ndarray:
    """(18,H,W) float32 Gaussians exp(-d^2 / 2 sigma^2) around the truncated scaled points; 0 if missing."""
    arr = _as_keypoints(kps).astype(np.float64)
    h, w = size
    out = np.zeros((NUM_KEYPOINTS, h, w), dtype=np.float32)
    yy = np.arange(h)[:, None]
    xx = np.arange(w)[None, :]
    for i, point in enumerate(arr):
        if _missing(point):
            continue
        # Divide then multiply, then truncate: the official cords_to_map order (changes rounding).
        cy = int(point[0] / frame[0] * h)
        cx = int(point[1] / frame[1] * w)
        out[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return out


def skeleton(kps: Any, size: tuple[int, int], frame: tuple[int, int] = FRAME) -> np.ndarray:
    """(3,H,W) float32 RGB skeleton in [0,1]: 17 anti-aliased bones (width 2), joint discs (radius 3)."""
    import cv2

    arr = _as_keypoints(kps)
    h, w = size
    sy, sx = h / frame[0], w / frame[1]
    canvas = np.zeros((h, w, 3), dtype=np.uint8)

    def pt(p: np.ndarray) -> tuple[int, int]:
        return int(p[1] * sx), int(p[0] * sy)  # cv2 wants (x, y)

    for (a, b), color in zip(BONES, BONE_COLORS):
        if _missing(arr[a]) or _missing(arr[b]):
            continue
        cv2.line(canvas, pt(arr[a]), pt(arr[b]), color, LINE_THICKNESS, cv2.LINE_AA)
    for point, color in zip(arr, JOINT_COLORS):
        if not _missing(point):
            cv2.circle(canvas, pt(point), LINE_THICKNESS + 1, color, -1, cv2.LINE_AA)
    # float64 division then float32, as the official code (torch.tensor(... / 255., float32)).
    return (canvas.transpose(2, 0, 1) / 255.0).astype(np.float32)


def pose_map(kps: Any, kind: str, size: tuple[int, int], frame: tuple[int, int] = FRAME) -> np.ndarray:
    """Pose map of ``kind`` (heatmaps18 | skeleton3 | cfld21) at ``size`` (H,W), float32 (C,H,W)."""
    if kind == "heatmaps18":
        return heatmaps(kps, size, frame)
    if kind == "skeleton3":
        return skeleton(kps, size, frame)
    if kind == "cfld21":
        return np.concatenate([skeleton(kps, size, frame), heatmaps(kps, size, frame)], axis=0)
    raise DataError(f"unknown pose map kind {kind!r}; use one of {', '.join(KINDS)}")
