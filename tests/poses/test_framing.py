"""The photo -> 256x176 frame mapping, on hand-computed cases (bench/poses/framing.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.poses.framing import Framing, frame_for


def _kps(points: dict[int, tuple[float, float]]) -> np.ndarray:
    """(18, 2) (y, x), -1 except the given points."""
    out = np.full((18, 2), -1.0)
    for i, yx in points.items():
        out[i] = yx
    return out


def test_square_photo_is_cropped_around_the_person() -> None:
    # 1000x1000: width = floor(1000 * 176 / 256 + 0.5) = floor(688.0) = 688. The person spans
    # x 250..350, centre 300: left = floor(300 - 344 + 0.5) = -44 -> moved inside: 0.
    kps = _kps({0: (500, 300), 1: (100, 250), 2: (900, 350)})
    f = frame_for((1000, 1000), kps)
    assert (f.left, f.width, f.padded) == (0, 688, False)
    out = f.keypoints(kps)
    # y' = 500 * 256 / 1000 = 128; x' = 300 * 176 / 688 = 76.74 -> 77
    assert out[0].tolist() == [128, 77]
    assert out[1].tolist() == [26, 64]  # 25.6 -> 26; 250 * 176 / 688 = 63.95 -> 64
    assert out[2].tolist() == [230, 90]  # 230.4 -> 230; 89.53 -> 90
    assert (out[3:] == -1).all()


def test_person_near_the_right_edge() -> None:
    # centre 800: left = floor(800 - 344 + 0.5) = 456 > 1000 - 688 = 312 -> 312.
    kps = _kps({0: (100, 800)})
    f = frame_for((1000, 1000), kps)
    assert f.left == 312
    # y' = 25.6 -> 26, x' = (800 - 312) * 176 / 688 = 124.84 -> 125
    assert f.keypoints(kps)[0].tolist() == [26, 125]


def test_person_in_the_middle_of_a_landscape_photo() -> None:
    # 480x1280 (HxW): width = floor(480 * 0.6875 + 0.5) = 330; person x 600..700 -> centre 650,
    # left = floor(650 - 165 + 0.5) = 485.
    kps = _kps({2: (240, 600), 5: (240, 700)})
    f = frame_for((480, 1280), kps)
    assert (f.left, f.width) == (485, 330)
    # y' = 240 * 256 / 480 = 128; x' = (600 - 485) * 176 / 330 = 61.33 -> 61, (700 - 485) * 176 / 330 = 114.67 -> 115
    assert f.keypoints(kps)[[2, 5]].tolist() == [[128, 61], [128, 115]]


def test_deepfashion_highres_is_padded_by_a_few_columns() -> None:
    # 1101x750 (HxW, the In-shop high-res size): width = floor(756.9375 + 0.5) = 757 > 750:
    # 7 white columns, 3 left and 4 right.
    kps = _kps({0: (550.5, 375)})
    f = frame_for((1101, 750), kps)
    assert (f.left, f.width, f.padded) == (-3, 757, True)
    # y' = 550.5 * 256 / 1101 = 128.0; x' = (375 + 3) * 176 / 757 = 87.88 -> 88
    assert f.keypoints(kps)[0].tolist() == [128, 88]


def test_narrow_photo_is_padded_evenly_odd_column_right() -> None:
    # 400x200: width = floor(275 + 0.5) = 275; 75 columns: 37 left, 38 right.
    f = frame_for((400, 200), None)
    assert (f.left, f.width) == (-37, 275)
    kps = _kps({0: (200, 100)})
    # y' = 128; x' = (100 + 37) * 176 / 275 = 87.68 -> 88
    assert f.keypoints(kps)[0].tolist() == [128, 88]
    photo = Image.new("RGB", (200, 400), (10, 20, 30))
    framed = f.image(photo)
    arr = np.asarray(framed)
    assert framed.size == (275, 400)
    assert (arr[:, :37] == 255).all() and (arr[:, 237:] == 255).all()  # 37 left, 38 right, white
    assert (arr[:, 37:237] == (10, 20, 30)).all()


def test_annotation_frame_photo_is_the_identity() -> None:
    kps = _kps({0: (10, 20), 13: (250, 170)})
    f = frame_for((256, 176), kps)
    assert (f.left, f.width) == (0, 176)
    assert f.keypoints(kps)[[0, 13]].tolist() == [[10, 20], [250, 170]]
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 176, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(f.image(photo)), np.asarray(photo))


def test_crop_cuts_the_same_columns_as_the_keypoints() -> None:
    photo = np.zeros((100, 300, 3), dtype=np.uint8)
    photo[:, 200] = 255  # a white column at x = 200
    kps = _kps({0: (50, 200)})
    f = frame_for((100, 300), kps)  # width 69, left = floor(200 - 34.5 + 0.5) = 166
    assert (f.left, f.width) == (166, 69)
    framed = np.asarray(f.image(Image.fromarray(photo)))
    assert framed.shape == (100, 69, 3) and (framed[:, 200 - 166] == 255).all()
    # the keypoint on that column: x' = 34 * 176 / 69 = 86.7 -> 87, the column's place at 176 wide
    assert f.keypoints(kps)[0].tolist() == [128, 87]


def test_a_visible_point_never_reads_as_missing() -> None:
    f = Framing((256, 176), 0, 176)
    out = f.keypoints(_kps({4: (-1.2, 5), 7: (5, -0.8)}))
    assert out[4].tolist() == [-2, 5] and out[7].tolist() == [5, -2]
    assert (out[0] == -1).all()


def test_framing_refuses_another_photo_size() -> None:
    with pytest.raises(ValueError, match="made for a 50x100 .WxH. photo, got 60x100"):
        frame_for((100, 50)).image(Image.new("RGB", (60, 100)))
