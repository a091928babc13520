"""Hybrid-granularity attention (HGA): Swin stage 1-3 features -> additive biases on UNet queries.

Nine independent branches (zero 1x1 conv in -> transformer blocks -> zero 1x1 conv out), one per
up-block transformer of the UNet. Branches take the Swin stages in order, moving to the next stage
whenever ``inner_dims`` changes (the official rule), so blocks 11,10,9 read stage 1, 8,7,6 stage 2
and 5,4,3 stage 3. Both convs start at zero, so a fresh model adds exactly nothing to the UNet.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.cfld.blocks import TransformerBlock
from methods.cfld.config import CFLDConfig


def bias_key(block_idx: int) -> str:
    """The official name of the query bias of UNet up-block transformer ``block_idx``."""
    return f"block_{block_idx}_cross_attn_q"


class AppearanceEncoder(nn.Module):
    def __init__(self, config: CFLDConfig) -> None:
        super().__init__()
        a = config.appearance
        self.block_idx = list(a.attn_residual_block_idx)
        self.inner_dims = list(a.inner_dims)
        self.embed_dims = list(a.embed_dims)
        self.ctx_dims = list(a.ctx_dims)
        # Registration order blocks, zero_conv_ins, zero_conv_outs = the official key order.
        self.blocks = nn.ModuleList(
            nn.Sequential(*[TransformerBlock(e, h, e // h) for _ in range(a.depth)])
            for e, h in zip(a.embed_dims, a.heads)
        )
        self.zero_conv_ins = nn.ModuleList(
            nn.Conv2d(i, e, kernel_size=k, stride=s, padding=p)
            for i, e, k, s, p in zip(
                a.inner_dims, a.embed_dims, a.convin_kernel_size, a.convin_stride, a.convin_padding
            )
        )
        self.zero_conv_outs = nn.ModuleList(
            nn.Conv2d(e, c, kernel_size=1) for e, c in zip(a.embed_dims, a.ctx_dims)
        )
        for p in [*self.zero_conv_ins.parameters(), *self.zero_conv_outs.parameters()]:
            nn.init.zeros_(p)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``features``: Swin stage outputs (B, H*W, C) (square maps); returns {bias_key: (B, HW, ctx)}."""
        biases: dict[str, torch.Tensor] = {}
        stage = 0
        for i, block in enumerate(self.blocks):
            feat = features[stage]
            b, n, c = feat.shape
            side = int(round(n**0.5))
            x = feat.transpose(1, 2).reshape(b, c, side, side)
            x = self.zero_conv_ins[i](x)
            h, w = x.shape[2:]
            x = block(x.flatten(2).transpose(1, 2))
            x = self.zero_conv_outs[i](x.transpose(1, 2).reshape(b, -1, h, w))
            biases[bias_key(self.block_idx[i])] = x.flatten(2).transpose(1, 2)
            if i + 1 < len(self.blocks) and self.inner_dims[i] != self.inner_dims[i + 1]:
                stage += 1
        return biases
