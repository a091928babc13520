"""PairDataset + collate_pairs: what a method receives for each InputSpec."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bench.api import InputSpec, PairBatch
from bench.data.deepfashion import DeepFashionDataset, load_image, pair_id
from bench.data.loader import PairDataset, collate_pairs
from bench.errors import DataError


def test_keypoint_only_spec(tiny_root):
    ds = DeepFashionDataset(tiny_root, "test")
    loader = DataLoader(
        PairDataset(ds, InputSpec(image_size=(32, 22))), batch_size=4, collate_fn=collate_pairs
    )
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 2]
    batch = batches[0]
    assert isinstance(batch, PairBatch)
    src, tgt = ds.pairs[1]
    assert batch.pair_ids[1] == pair_id(src, tgt)
    assert batch.source_names[1] == src and batch.target_names[1] == tgt
    assert batch.source_image.shape == (4, 3, 32, 22) and batch.source_image.dtype == torch.float32
    assert torch.equal(batch.source_image[1], load_image(ds.image_path(src), (32, 22)))
    assert batch.source_keypoints.shape == (4, 18, 2) and batch.source_keypoints.dtype == torch.float32
    assert torch.equal(batch.target_keypoints[1], torch.from_numpy(ds.annotations[tgt]).float())
    assert (batch.source_keypoints == -1).any()  # missing points stay -1
    assert batch.keypoint_frame == (256, 176)
    assert batch.source_pose is None and batch.target_pose is None and batch.target_image is None


def test_target_image_and_subset(tiny_root):
    ds = DeepFashionDataset(tiny_root, "test")
    pd_ = PairDataset(ds, InputSpec(image_size=(64, 44), with_target_image=True), indices=[5, 2])
    batch = collate_pairs([pd_[0], pd_[1]])
    assert batch.pair_ids == [pair_id(*ds.pairs[5]), pair_id(*ds.pairs[2])]
    assert torch.equal(batch.target_image[0], load_image(ds.image_path(ds.pairs[5][1])))


def test_pose_maps_use_the_posemaps_contract(tiny_root, monkeypatch):
    # Stand-in with the documented signature pose_map(kps, kind, size, frame); the real module is
    # exercised by test_pose_maps_with_real_posemaps below.
    calls = []

    def fake_pose_map(kps, kind, size, frame=(256, 176)):
        calls.append((kps.copy(), kind, size, frame))
        return np.full((21, *size), float(kps[1, 0]), dtype=np.float32)

    monkeypatch.setitem(sys.modules, "bench.data.posemaps", types.SimpleNamespace(pose_map=fake_pose_map))
    ds = DeepFashionDataset(tiny_root, "test")
    item = PairDataset(ds, InputSpec(pose_kind="cfld21", pose_size=(16, 16)))[0]
    src, tgt = ds.pairs[0]
    assert item["source_pose"].shape == (21, 16, 16) and item["source_pose"].dtype == torch.float32
    assert item["source_pose"][0, 0, 0] == ds.annotations[src][1, 0]
    assert item["target_pose"][0, 0, 0] == ds.annotations[tgt][1, 0]
    assert np.array_equal(calls[0][0], ds.annotations[src]) and calls[0][1:] == (
        "cfld21",
        (16, 16),
        (256, 176),
    )


def test_pose_maps_with_real_posemaps(tiny_root):
    pytest.importorskip("bench.data.posemaps", reason="bench/data/posemaps.py is written by another task")
    ds = DeepFashionDataset(tiny_root, "test")
    batch = collate_pairs([PairDataset(ds, InputSpec(pose_kind="heatmaps18", pose_size=(32, 22)))[0]])
    assert batch.source_pose.shape == (1, 18, 32, 22) and batch.target_pose.shape == (1, 18, 32, 22)
    assert batch.source_pose.dtype == torch.float32


def test_unannotated_pair_image_is_reported_before_loading(tiny_root):
    ann = tiny_root / "fasion-resize-annotation-test.csv"
    lines = ann.read_text().splitlines()
    dropped = lines.pop(2).split(":")[0]
    ann.write_text("\n".join(lines) + "\n")
    ds = DeepFashionDataset(tiny_root, "test")
    with pytest.raises(DataError, match="no annotation row") as err:
        PairDataset(ds, InputSpec())
    assert dropped in str(err.value) and str(ann) in str(err.value)


def test_bad_spec_and_indices(tiny_root):
    ds = DeepFashionDataset(tiny_root, "test")
    with pytest.raises(DataError, match="out of range"):
        PairDataset(ds, InputSpec(), indices=[0, 6])
    with pytest.raises(DataError, match="pose_size"):
        PairDataset(ds, InputSpec(pose_kind="heatmaps18"))


def test_missing_image_names_the_file(tiny_root):
    ds = DeepFashionDataset(tiny_root, "test")
    ds.image_path(ds.pairs[0][0]).unlink()
    with pytest.raises(DataError, match="image not found") as err:
        PairDataset(ds, InputSpec())[0]
    assert ds.pairs[0][0] in str(err.value)
