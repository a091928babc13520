"""The two built-in baselines: copy-source and pose-warp."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.api import PairBatch
from bench.registry import load_method

sys.path.insert(0, str(Path(__file__).parent))
from _engine_data import draw_person, pose_variants  # noqa: E402

COLOURS = {"shirt": (200, 40, 40), "trousers": (30, 40, 150), "skin": (220, 180, 140), "hair": (40, 20, 10)}


def batch_of(src_kps: np.ndarray, tgt_kps: np.ndarray) -> PairBatch:
    img = torch.from_numpy(draw_person(src_kps, COLOURS)).permute(2, 0, 1).float()[None] / 255
    return PairBatch(
        pair_ids=["a_2_b"],
        source_names=["a.jpg"],
        target_names=["b.jpg"],
        source_image=img,
        source_keypoints=torch.from_numpy(src_kps).float()[None],
        target_keypoints=torch.from_numpy(tgt_kps).float()[None],
    )


def l1(a: torch.Tensor, b: np.ndarray) -> float:
    return float((a[0].permute(1, 2, 0).numpy() * 255 - b.astype(np.float32)).__abs__().mean())


def test_copy_source_returns_the_source() -> None:
    poses = pose_variants()
    batch = batch_of(poses[0], poses[1])
    out = load_method("copy-source").generate(batch, [torch.Generator()])
    assert torch.equal(out, batch.source_image) and out.data_ptr() != batch.source_image.data_ptr()


@pytest.mark.parametrize("target", [1, 2, 3])
def test_pose_warp_moves_the_person_to_the_target_pose(target: int) -> None:
    poses = pose_variants()
    batch = batch_of(poses[0], poses[target])
    truth = draw_person(poses[target], COLOURS)
    warped = load_method("pose-warp").generate(batch, [torch.Generator()])
    assert warped.shape == (1, 3, 256, 176) and warped.min() >= 0 and warped.max() <= 1
    copy_err, warp_err = l1(batch.source_image, truth), l1(warped, truth)
    # The warp must recover most of what copying the source gets wrong.
    assert warp_err < 0.35 * copy_err, (warp_err, copy_err)


def test_pose_warp_identity_pose_reproduces_the_person() -> None:
    pose = pose_variants()[0]
    batch = batch_of(pose, pose)
    out = load_method("pose-warp").generate(batch, [torch.Generator()])
    assert l1(out, draw_person(pose, COLOURS)) < 3.0


def test_pose_warp_is_deterministic_and_batch_independent() -> None:
    poses = pose_variants()
    method = load_method("pose-warp")
    one = [method.generate(batch_of(poses[0], poses[t]), [torch.Generator()]) for t in (1, 3)]
    b1, b3 = batch_of(poses[0], poses[1]), batch_of(poses[0], poses[3])
    both = PairBatch(
        pair_ids=["x", "y"],
        source_names=["a", "a"],
        target_names=["b", "c"],
        source_image=torch.cat([b1.source_image, b3.source_image]),
        source_keypoints=torch.cat([b1.source_keypoints, b3.source_keypoints]),
        target_keypoints=torch.cat([b1.target_keypoints, b3.target_keypoints]),
    )
    out = method.generate(both, [torch.Generator(), torch.Generator()])
    assert torch.equal(out, torch.cat(one))


def test_pose_warp_missing_parts_leave_the_background() -> None:
    poses = pose_variants()
    src = poses[0].copy()
    src[[3, 4, 6, 7]] = -1  # the source shows no arms
    tgt = poses[1]
    out = load_method("pose-warp").generate(batch_of(src, tgt), [torch.Generator()])[0]
    background = out[:, 2, 2].clone()
    # The raised forearms of the target (around the wrists at y~16..44) must stay background.
    for y, x in ((30, 38), (30, 138)):
        assert torch.allclose(out[:, y, x], background, atol=1 / 255)
    # Nothing visible at all: the whole image is the source's background colour.
    nothing = np.full((18, 2), -1)
    blank = load_method("pose-warp").generate(batch_of(poses[0], nothing), [torch.Generator()])[0]
    assert torch.allclose(blank, torch.full_like(blank, 235 / 255), atol=1e-6)


def test_pose_warp_respects_the_keypoint_frame_and_config() -> None:
    method = load_method("pose-warp", {"image_size": [128, 88], "width_scale": 0.8})
    assert method.inputs.image_size == (128, 88)
    assert method.settings()["config"]["width_scale"] == 0.8
    poses = pose_variants()
    batch = batch_of(poses[0], poses[2])
    small = torch.nn.functional.interpolate(batch.source_image, size=(128, 88), mode="area")
    batch.source_image = small
    out = method.generate(batch, [torch.Generator()])
    assert out.shape == (1, 3, 128, 88)
    # The target is shifted 18 px right in the 176-wide frame: 9 px at width 88.
    truth = torch.nn.functional.interpolate(
        torch.from_numpy(draw_person(poses[2], COLOURS)).permute(2, 0, 1).float()[None] / 255,
        size=(128, 88),
        mode="area",
    )
    assert float((out - truth).abs().mean()) < 0.35 * float((small - truth).abs().mean())
