"""Turn a :class:`DeepFashionDataset` into the :class:`bench.api.PairBatch` objects methods consume.

A method states what it needs with an :class:`InputSpec`; only that is loaded (the target image
only for training, pose maps only when a kind is named), so generation never reads a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.api import ANNOTATION_FRAME, InputSpec, PairBatch
from bench.data.deepfashion import DeepFashionDataset, load_image, pair_id
from bench.errors import DataError


def pose_tensor(kps: np.ndarray, kind: str, size: tuple[int, int]) -> torch.Tensor:
    """The float32 (C, H, W) pose map of ``kind`` for (18, 2) (y, x) keypoints in the annotation frame."""
    # Imported lazily: methods that need only keypoints never pay for cv2.
    from bench.data.posemaps import pose_map

    return torch.as_tensor(
        np.asarray(pose_map(kps, kind, tuple(size), ANNOTATION_FRAME)), dtype=torch.float32
    )


class PairDataset(Dataset):
    """A torch Dataset over (a subset of) a split's pairs; each item is a dict (see :func:`collate_pairs`)."""

    def __init__(
        self, dataset: DeepFashionDataset, spec: InputSpec, indices: Sequence[int] | None = None
    ) -> None:
        self.dataset = dataset
        self.spec = spec
        self.indices = list(range(len(dataset.pairs))) if indices is None else [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < len(dataset.pairs)]
        if bad:
            raise DataError(
                f"{dataset.pairs_path}: pair indices out of range 0..{len(dataset.pairs) - 1}: {bad[:10]}"
            )
        if spec.pose_kind is not None and spec.pose_size is None:
            raise DataError(f"input spec asks for pose maps {spec.pose_kind!r} without a pose_size")
        # Fail before the first batch, naming every unannotated image at once.
        names = {name for i in self.indices for name in dataset.pairs[i]}
        unannotated = sorted(name for name in names if name not in dataset.annotations)
        if unannotated:
            raise DataError(
                f"{dataset.annotations_path}: {len(unannotated)} image(s) used by pairs in "
                f"{dataset.pairs_path} have no annotation row: {', '.join(unannotated)}"
            )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        src, tgt = self.dataset.pairs[self.indices[index]]
        spec = self.spec
        src_kps = self.dataset.annotations[src]
        tgt_kps = self.dataset.annotations[tgt]
        item: dict[str, Any] = {
            "pair_id": pair_id(src, tgt),
            "source_name": src,
            "target_name": tgt,
            "source_image": load_image(self.dataset.image_path(src), spec.image_size),
            "source_keypoints": torch.from_numpy(src_kps.astype(np.float32)),
            "target_keypoints": torch.from_numpy(tgt_kps.astype(np.float32)),
            "source_pose": None,
            "target_pose": None,
            "target_image": None,
        }
        if spec.pose_kind is not None:
            item["source_pose"] = pose_tensor(src_kps, spec.pose_kind, spec.pose_size)
            item["target_pose"] = pose_tensor(tgt_kps, spec.pose_kind, spec.pose_size)
        if spec.with_target_image:
            item["target_image"] = load_image(self.dataset.image_path(tgt), spec.image_size)
        return item


def _stack(samples: list[dict[str, Any]], key: str) -> torch.Tensor | None:
    values = [s[key] for s in samples]
    if all(v is None for v in values):
        return None
    return torch.stack(values)


def collate_pairs(samples: list[dict[str, Any]]) -> PairBatch:
    """Stack :class:`PairDataset` items into a :class:`PairBatch` (use as a DataLoader ``collate_fn``)."""
    if not samples:
        raise ValueError("collate_pairs needs at least one sample")
    return PairBatch(
        pair_ids=[s["pair_id"] for s in samples],
        source_names=[s["source_name"] for s in samples],
        target_names=[s["target_name"] for s in samples],
        source_image=torch.stack([s["source_image"] for s in samples]),
        source_keypoints=torch.stack([s["source_keypoints"] for s in samples]),
        target_keypoints=torch.stack([s["target_keypoints"] for s in samples]),
        keypoint_frame=ANNOTATION_FRAME,
        source_pose=_stack(samples, "source_pose"),
        target_pose=_stack(samples, "target_pose"),
        target_image=_stack(samples, "target_image"),
    )
