"""Swin Transformer backbone returning every stage's tokens (before patch merging).

Same maths and parameter/buffer names as the microsoft/Swin-Transformer code the official CFLD
copies (``patch_embed``, ``layers.{i}.blocks.{j}.attn.relative_position_bias_table`` ...), so the
official checkpoint loads strictly. Window attention is one ``F.scaled_dot_product_attention``
call with the relative-position bias (and the shift mask) as an additive ``attn_mask``.
``relative_position_index`` and ``attn_mask`` are persistent buffers because the official
checkpoint stores them (26 keys for Swin-B).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.cfld.config import CFLDConfig


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, ws*ws, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int) -> torch.Tensor:
    """(B * nW, ws*ws, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws^2, ws^2) int64 index into the (2ws-1)^2 bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
    return rel[..., 0] * (2 * ws - 1) + rel[..., 1]


def shift_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """(nW, ws^2, ws^2) mask: 0 inside one region of the rolled map, -100 across regions (official value)."""
    img = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            img[:, hs, wsl, :] = label
            label += 1
    win = window_partition(img, ws).squeeze(-1)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    def __init__(self, dim: int, ws: int, heads: int) -> None:
        super().__init__()
        self.ws = ws
        self.heads = heads
        self.relative_position_bias_table = nn.Parameter(torch.empty((2 * ws - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def position_bias(self) -> torch.Tensor:
        n = self.ws * self.ws
        # F.embedding rather than table[index]: the same rows, but its CPU backward gives each thread
        # its own rows of the gradient, whereas indexing's backward (index_put_ accumulate) adds the
        # repeated indices in a thread-dependent order, so 2-thread training was not bit-reproducible.
        table = F.embedding(self.relative_position_index.view(-1), self.relative_position_bias_table)
        return table.view(n, n, -1).permute(2, 0, 1)  # (heads, N, N)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B*nW, N, C); ``mask`` (nW, N, N) or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.position_bias().unsqueeze(0)  # (1, heads, N, N)
        if mask is not None:
            nw = mask.shape[0]
            bias = (bias + mask.unsqueeze(1)).to(q.dtype)  # (nW, heads, N, N)
            # Group windows per image so the per-window mask broadcasts over the batch.
            out = F.scaled_dot_product_attention(
                q.view(-1, nw, self.heads, n, c // self.heads),
                k.view(-1, nw, self.heads, n, c // self.heads),
                v.view(-1, nw, self.heads, n, c // self.heads),
                attn_mask=bias,
            ).view(bw, self.heads, n, -1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth (per-sample residual drop), active only in training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.ndim - 1))).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class SwinBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        heads: int,
        ws: int,
        shift: int,
        mlp_ratio: float,
        dp: float,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        # A window no smaller than the map covers it whole: no shift, window = map (official rule).
        if min(resolution) <= ws:
            ws, shift = min(resolution), 0
        self.ws, self.shift = ws, shift
        mask = shift_mask(*resolution, ws, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)  # None registers nothing in the state_dict
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, heads)
        self.drop_path = DropPath(dp)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, n, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        if self.shift:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(window_partition(y, self.ws), self.attn_mask)
        y = window_reverse(y, self.ws, h, w)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, resolution: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.resolution = resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        # Official channel order: (even,even), (odd,even), (even,odd), (odd,odd).
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        depth: int,
        heads: int,
        ws: int,
        mlp_ratio: float,
        dps: list[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio, dps[i])
            for i in range(depth)
        )
        self.downsample = PatchMerging(resolution, dim) if downsample else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            x = block(x)
        feature = x
        if self.downsample is not None:
            x = self.downsample(x)
        return x, feature


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))  # (B, L, C)


class SwinBackbone(nn.Module):
    """``forward(img) -> list of stage tokens (B, H_i*W_i, C_i)`` (stage outputs before merging)."""

    def __init__(self, config: CFLDConfig) -> None:
        super().__init__()
        s = config.swin
        self.patch_embed = PatchEmbed(s.patch_size, s.embed_dim)
        res = (s.img_size[0] // s.patch_size, s.img_size[1] // s.patch_size)
        # Stochastic-depth rates rising linearly over all blocks (plain floats: works on the meta device).
        n = sum(s.depths)
        dpr = [s.drop_path_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
        self.layers = nn.ModuleList()
        start = 0
        for i, (depth, heads) in enumerate(zip(s.depths, s.num_heads)):
            self.layers.append(
                BasicLayer(
                    dim=s.embed_dim * 2**i,
                    resolution=(res[0] // 2**i, res[1] // 2**i),
                    depth=depth,
                    heads=heads,
                    ws=s.window_size,
                    mlp_ratio=s.mlp_ratio,
                    dps=dpr[start : start + depth],
                    downsample=i < len(s.depths) - 1,
                )
            )
            start += depth
        self.apply(_init_weights)

    def forward(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(img)
        features = []
        for layer in self.layers:
            x, feature = layer(x)
            features.append(feature)
        return features


def _init_weights(m: nn.Module) -> None:
    # Swin's own init (trunc-normal linears, unit LayerNorms); only matters when training from scratch.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
