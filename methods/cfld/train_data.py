"""Training data for CFLD: the official ``PisTrainDeepFashion`` item from :class:`PairDataset`.

Each item holds the condition image (source, at the Swin input size, 256x256), the source and
target images at the diffusion size (512x512 in the paper config; each resized from the original
file, bicubic + antialias, aspect not kept) and the cfld21 pose maps of both. Nothing random
happens here: the flip and every other draw are made in the training loop from seeded
generators, so a resumed run sees exactly the same data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from bench.api import DeepFashionDataset, InputSpec, PairDataset, load_image


class CFLDTrainData(Dataset):
    def __init__(
        self,
        root: str,
        diffusion_size: tuple[int, int],
        cond_size: tuple[int, int],
        pose_size: tuple[int, int],
        split: str = "train",
    ) -> None:
        self.dataset = DeepFashionDataset(root, split)
        spec = InputSpec(
            image_size=tuple(diffusion_size),
            pose_kind="cfld21",
            pose_size=tuple(pose_size),
            with_target_image=True,
        )
        self.pairs = PairDataset(self.dataset, spec)
        self.cond_size = tuple(cond_size)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.pairs[index]
        return {
            "img_cond": load_image(self.dataset.image_path(item["source_name"]), self.cond_size),
            "img_src": item["source_image"],
            "img_tgt": item["target_image"],
            "pose_src": item["source_pose"],
            "pose_tgt": item["target_pose"],
        }


def collate(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


class EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch): the same on every process and after a resume."""

    def __init__(self, length: int, seed: int) -> None:
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # noqa: ANN204
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=g).tolist())

    def __len__(self) -> int:
        return self.length


__all__ = ["CFLDTrainData", "EpochSampler", "collate"]
