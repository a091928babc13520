"""Pose maps: analytic properties here; bit-exact parity with the official code in tests/cfld/test_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data.posemaps import heatmaps, pose_map, rescale_keypoints, skeleton
from bench.errors import DataError


def _kps() -> np.ndarray:
    kps = np.full((18, 2), -1, dtype=np.int64)
    kps[1] = (100, 88)  # neck
    kps[2] = (100, 60)  # right shoulder: bone 1-2 drawn
    kps[5] = (-1, 120)  # half-missing counts as missing
    return kps


def test_rescale_keeps_missing_points():
    out = rescale_keypoints(_kps(), (256, 176), (512, 352))
    assert out[1].tolist() == [200.0, 176.0]
    assert out[5].tolist() == [-1.0, -1.0] and out[0].tolist() == [-1.0, -1.0]


def test_heatmap_peaks_at_truncated_scaled_point_and_missing_is_zero():
    hm = heatmaps(_kps(), (256, 256))
    assert hm.shape == (18, 256, 256) and hm.dtype == np.float32
    # x = 88 / 176 * 256 = 128 exactly; y stays 100.
    assert hm[1, 100, 128] == 1.0 and np.unravel_index(hm[1].argmax(), hm[1].shape) == (100, 128)
    assert hm[1, 100, 134] == pytest.approx(np.exp(-36 / 72), rel=1e-6)  # one sigma along x: exp(-1/2)
    assert not hm[0].any() and not hm[5].any()


def test_skeleton_draws_only_bones_with_both_ends():
    sk = skeleton(_kps(), (256, 176))
    assert sk.shape == (3, 256, 176) and sk.dtype == np.float32
    assert 0.0 <= sk.min() and sk.max() <= 1.0
    # Joint disc of the neck in JOINT_COLORS[1] = (255, 85, 0).
    assert sk[:, 100, 88].tolist() == pytest.approx([1.0, 85 / 255, 0.0])
    # Midpoint of the neck->right-shoulder bone in BONE_COLORS[0] = (153, 0, 0).
    assert sk[:, 100, 74].tolist() == pytest.approx([153 / 255, 0.0, 0.0])
    # Nothing near the half-missing left shoulder.
    assert not sk[:, 90:110, 110:130].any()


def test_cfld21_is_skeleton_then_heatmaps_and_accepts_tensors():
    kps = _kps()
    full = pose_map(torch.from_numpy(kps).float(), "cfld21", (256, 256))
    assert full.shape == (21, 256, 256)
    np.testing.assert_array_equal(full[:3], pose_map(kps, "skeleton3", (256, 256)))
    np.testing.assert_array_equal(full[3:], pose_map(kps, "heatmaps18", (256, 256)))


def test_all_missing_gives_zeros():
    assert not pose_map(np.full((18, 2), -1), "cfld21", (64, 64)).any()


@pytest.mark.parametrize(
    ("kps", "kind", "match"),
    [(np.zeros((17, 2)), "cfld21", "shape"), (np.zeros((18, 2)), "rgb", "unknown pose map kind")],
)
def test_bad_input_is_a_data_error(kps, kind, match):
    with pytest.raises(DataError, match=match):
        pose_map(kps, kind, (64, 64))
