"""OpenPose COCO-18 keypoints and the limb tables the field uses (see deepfashion.md §6-7)."""

from __future__ import annotations

KEYPOINT_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "RHip",
    "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)  # fmt: skip
NUM_KEYPOINTS = 18
MISSING = -1

# The 17 bones of CFLD / PIDM / NTED (0-based): the first 17 OpenPose limbs.
BONES: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
