"""Keypoint layouts of the pose tools, and how each maps onto OpenPose COCO-18 (our order).

The target order is ``bench.data.keypoints.KEYPOINT_NAMES``; every table here is written in names,
so an index can be checked against the published orderings at a glance:
- OpenPose BODY_25 (``poseParameters.cpp``, doc/02_output.md): COCO-18's 18 points plus MidHip and
  six foot points; the 18 shared points carry the same names.
- COCO person keypoints (the ``categories[0].keypoints`` list of the COCO annotation files): 17
  points, no neck.
"""

from __future__ import annotations

import numpy as np

from bench.data.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS

BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)  # fmt: skip

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

# OpenPose name -> COCO name (the neck has none: it is derived).
_COCO_OF: dict[str, str] = {
    "Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
    "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
    "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
}  # fmt: skip

# Points per person of each layout (x, y, c triplets in the files).
LAYOUT_POINTS: dict[str, int] = {"openpose-coco18": 18, "openpose-body25": 25, "coco17": 17}


def from_body25(points: np.ndarray) -> np.ndarray:
    """(25, 3) BODY_25 (x, y, c) -> (18, 3) in COCO-18 order (MidHip and the feet are dropped)."""
    return points[[BODY25_NAMES.index(name) for name in KEYPOINT_NAMES]].copy()


def from_coco17(points: np.ndarray) -> np.ndarray:
    """(17, 3) COCO (x, y, c) -> (18, 3) in COCO-18 order.

    The neck is the midpoint of the two shoulders, with the lower of their two confidences, and
    missing (c = 0) unless both shoulders are present: a neck guessed from one shoulder would
    move the whole upper skeleton.
    """
    out = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for i, name in enumerate(KEYPOINT_NAMES):
        if name in _COCO_OF:
            out[i] = points[COCO17_NAMES.index(_COCO_OF[name])]
    left = points[COCO17_NAMES.index("left_shoulder")]
    right = points[COCO17_NAMES.index("right_shoulder")]
    if left[2] > 0 and right[2] > 0:
        neck = KEYPOINT_NAMES.index("Neck")
        out[neck, :2] = (left[:2] + right[:2]) / 2.0
        out[neck, 2] = min(left[2], right[2])
    return out


def to_coco18(points: np.ndarray, layout: str) -> np.ndarray:
    """(N, 3) points of ``layout`` -> (18, 3) (x, y, c) in COCO-18 order."""
    if layout == "openpose-coco18":
        return points.astype(np.float64).copy()
    if layout == "openpose-body25":
        return from_body25(points.astype(np.float64))
    if layout == "coco17":
        return from_coco17(points.astype(np.float64))
    raise ValueError(f"unknown keypoint layout {layout!r}")
