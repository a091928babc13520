"""DINOv2 ViT-L/14 CLS features for FD-DINOv2 (Stein et al., NeurIPS 2023), our own torch code.

The network is the official ``DinoVisionTransformer`` as torch hub's
``facebookresearch/dinov2`` ``dinov2_vitl14`` builds it (``dinov2/hub/backbones.py``:
img_size 518, patch 14, LayerScale init 1.0, MLP FFN, ``block_chunks=0``, no register tokens,
``interpolate_offset=0.1``, ``interpolate_antialias=False``); its state dict loads into
:class:`DinoViT` key for key (``dinov2_vitl14_pretrain.pth``, strict), with
``torch.load(weights_only=True)``. The feature is the hub model's ``forward`` output: the CLS
token after the final LayerNorm (``x_norm_clstoken``; the hub head is the identity), 1024-d.

Preprocessing is dgm-eval's (layer6ai-labs/dgm-eval, ``dgm_eval/models/dinov2.py``,
``DINOv2Encoder.transform`` with its default ``clean_resize=False``): the RGB PIL image is
stretched to 224x224 by ``torchvision.transforms.Resize((224, 224), BICUBIC)`` (PIL bicubic on a
PIL image; no aspect-preserving crop), ``ToTensor`` (/255), then ``Normalize`` with the ImageNet
mean/std. :func:`dgm_eval_view` is that resize on the decoded uint8 image (CPU, decode threads);
:class:`DinoV2Features` takes the float [0, 1] result and normalises on the device. At 224 px
the 37x37 position grid of the 518-px checkpoint is resampled to 16x16 by the official rule
(:func:`interpolate_pos_embed`), computed once per grid size.

All DINOv2 checkpoints have 64-d attention heads, so a state dict fixes the whole architecture
(width, depth, heads, position grid): tests build tiny random ones in the official format.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.metrics.preprocess import resize_uint8

INPUT_SIZE = (224, 224)  # dgm-eval's Resize((224, 224))
PATCH_SIZE = 14
HEAD_DIM = 64  # every DINOv2 ViT (S/B/L/g) uses 64-d heads
INTERPOLATE_OFFSET = 0.1  # the hub models' interpolate_offset (a scale-factor kludge kept for compatibility)
FEATURE_DIMS = 1024  # ViT-L/14
CHUNK = 8  # images per forward pass on the CPU (ViT-L activations: ~60 MB per image at 224 px)
GPU_CHUNK = 128
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def dgm_eval_view(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (224, 224, 3): dgm-eval's ``Resize((224, 224), BICUBIC)`` on a PIL image."""
    return resize_uint8(img, INPUT_SIZE, "pil_bicubic")


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """The official ``interpolate_pos_encoding`` for an input of grid_h x grid_w patches.

    (1, 1 + M*M, D) -> (1, 1 + grid_h*grid_w, D): bicubic (no antialias) with the *scale factor*
    ``(grid + 0.1) / M`` rather than an output size; PyTorch maps output to input coordinates
    with that scale, so this differs slightly from ``size=(grid_h, grid_w)`` (which Hugging Face's
    Dinov2 uses). Unchanged when the grid is already M x M.
    """
    n = pos_embed.shape[1] - 1
    m = int(math.sqrt(n))
    if m * m != n:
        raise ValueError(f"pos_embed has {n} patch positions, not a square grid")
    if grid_h == m and grid_w == m:
        return pos_embed
    dim = pos_embed.shape[-1]
    patch = pos_embed[:, 1:].float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    scale = (float(grid_h + INTERPOLATE_OFFSET) / m, float(grid_w + INTERPOLATE_OFFSET) / m)
    patch = F.interpolate(patch, scale_factor=scale, mode="bicubic", antialias=False)
    if tuple(patch.shape[-2:]) != (grid_h, grid_w):
        raise ValueError(f"position grid interpolated to {tuple(patch.shape[-2:])}, not {(grid_h, grid_w)}")
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
    return torch.cat((pos_embed[:, :1].float(), patch), dim=1).to(pos_embed.dtype)


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH_SIZE, stride=PATCH_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, patches, D), row-major patch order


class _Attention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.heads = dim // HEAD_DIM
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v
        )  # softmax(q k^T / sqrt(64)) v, as the official Attention
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, nn.GELU's default


class _Block(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, hidden)
        self.ls2 = _LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoViT(nn.Module):
    """The official DINOv2 ViT (no registers, MLP FFN) with its state-dict names; returns CLS features."""

    def __init__(self, dim: int, depth: int, mlp_hidden: int, pos_grid: int) -> None:
        super().__init__()
        self.patch_embed = _PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + pos_grid * pos_grid, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # in the checkpoint; used only in training
        self.blocks = nn.ModuleList(_Block(dim, mlp_hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dims = dim
        self._pos_cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> DinoViT:
        """Build the architecture the official state dict describes and load it (strict, no copy)."""
        try:
            dim = state["cls_token"].shape[-1]
            depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
            mlp_hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
            pos_grid = int(math.isqrt(state["pos_embed"].shape[1] - 1))
        except (KeyError, ValueError, IndexError) as err:
            raise ValueError(f"not a DINOv2 ViT state dict (missing or malformed {err})") from None
        with torch.device("meta"):
            net = cls(dim, depth, mlp_hidden, pos_grid)
        net.load_state_dict(state, strict=True, assign=True)
        return net

    def _pos(self, grid_h: int, grid_w: int, like: torch.Tensor) -> torch.Tensor:
        key = (grid_h, grid_w, like.device, like.dtype)
        if key not in self._pos_cache:
            with torch.no_grad():
                self._pos_cache[key] = interpolate_pos_embed(self.pos_embed, grid_h, grid_w).to(like)
        return self._pos_cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, H, W), H and W multiples of 14 -> CLS after the final norm (B, D)."""
        _, _, h, w = x.shape
        tokens = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(tokens.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self._pos(h // PATCH_SIZE, w // PATCH_SIZE, tokens)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 0]


class DinoV2Features(nn.Module):
    """FD-DINOv2 feature extractor: float (B, 3, 224, 224) in [0, 1] -> float32 (B, D), inference mode.

    The input is :func:`dgm_eval_view` of each image divided by 255 (what ``ToTensor`` gives);
    any other size is refused rather than resized silently (the resize rule is dgm-eval's PIL
    bicubic, which belongs on the decode threads). Chunked: ``CHUNK`` images per pass on the CPU.
    """

    name = "dinov2_vitl14"

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        state = torch.load(Path(weights_path), map_location="cpu", weights_only=True)
        self.net = DinoViT.from_state_dict(state)
        self.dims = self.net.dims
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))
        self.eval().requires_grad_(False)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != INPUT_SIZE:
            raise ValueError(
                f"DINOv2 features take (B, 3, {INPUT_SIZE[0]}, {INPUT_SIZE[1]}) images from dgm_eval_view, "
                f"got {tuple(x.shape)}"
            )
        step = CHUNK if x.device.type == "cpu" else GPU_CHUNK
        outs = [
            self.net((x[i : i + step].float() - self.mean) / self.std) for i in range(0, x.shape[0], step)
        ]
        return torch.cat(outs).float() if outs else x.new_zeros((0, self.dims), dtype=torch.float32)
