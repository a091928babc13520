"""Tiny random DINOv2 ViTs in the official checkpoint format (``dinov2_vitl14_pretrain.pth``'s keys).

Width 64 (one 64-d head, as every DINOv2 head), depth 2, MLP 4x: the same state-dict layout as
ViT-L/14 (width 1024, depth 24), small enough for CPU tests. ``pos_grid=37`` gives the real
checkpoint's 518-px position grid, so a 224-px input exercises the real 37 -> 16 interpolation.
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_dinov2_state(
    dim: int = 64, depth: int = 2, pos_grid: int = 37, seed: int = 0
) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, std: float = 0.05) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * std

    state = {
        "cls_token": rnd(1, 1, dim, std=0.5),
        "pos_embed": rnd(1, 1 + pos_grid * pos_grid, dim, std=0.5),
        "mask_token": torch.zeros(1, dim),
        "patch_embed.proj.weight": rnd(dim, 3, 14, 14),
        "patch_embed.proj.bias": rnd(dim),
        "norm.weight": 1 + rnd(dim, std=0.1),
        "norm.bias": rnd(dim),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        state |= {
            p + "norm1.weight": 1 + rnd(dim, std=0.1),
            p + "norm1.bias": rnd(dim),
            p + "attn.qkv.weight": rnd(3 * dim, dim, std=0.2),
            p + "attn.qkv.bias": rnd(3 * dim),
            p + "attn.proj.weight": rnd(dim, dim, std=0.1),
            p + "attn.proj.bias": rnd(dim),
            p + "ls1.gamma": 0.5 + rnd(dim, std=0.1),
            p + "norm2.weight": 1 + rnd(dim, std=0.1),
            p + "norm2.bias": rnd(dim),
            p + "mlp.fc1.weight": rnd(4 * dim, dim, std=0.1),
            p + "mlp.fc1.bias": rnd(4 * dim),
            p + "mlp.fc2.weight": rnd(dim, 4 * dim, std=0.1),
            p + "mlp.fc2.bias": rnd(dim),
            p + "ls2.gamma": 0.5 + rnd(dim, std=0.1),
        }
    return state


def write_tiny_dinov2(path: Path, **kwargs: int) -> Path:
    """``torch.save`` a tiny state dict at ``path`` (e.g. the checkpoints dir / the official file name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tiny_dinov2_state(**kwargs), path)
    return path
