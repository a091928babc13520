"""Perception-refined decoder (PRD): learnable queries read Swin stage-4 tokens -> the UNet prompt.

Each block attends to the image tokens first, then among the queries, then applies the GEGLU MLP
(the official ``CrossAttnFirstTransformerBlock``); the query position embedding is re-added before
both attentions, as in the official code.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.cfld.blocks import TransformerBlock
from methods.cfld.config import CFLDConfig


class CrossAttnFirstBlock(TransformerBlock):
    def forward(self, x: torch.Tensor, query_pos: torch.Tensor, context: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = x + query_pos
        x = x + self.attn2(self.norm2(x), context)
        x = x + query_pos
        x = x + self.attn1(self.norm1(x))
        return x + self.ff(self.norm3(x))


class Decoder(nn.Module):
    """Parameters: ``query_feat``/``pos_embed`` (n_ctx x ctx_dim), ``kv_pos_embed`` (1 x tokens x C4)."""

    def __init__(self, config: CFLDConfig) -> None:
        super().__init__()
        d, s = config.decoder, config.swin
        kv_dim = s.embed_dim * 2 ** (len(s.depths) - 1)
        self.query_feat = nn.Parameter(torch.randn(d.n_ctx, d.ctx_dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(d.n_ctx, d.ctx_dim) * 0.02)
        self.blocks = nn.ModuleList(
            CrossAttnFirstBlock(d.ctx_dim, d.heads, d.ctx_dim // d.heads, context_dim=kv_dim)
            for _ in range(d.depth)
        )
        # Stage-4 tokens of a 256x256 image: (256/32)^2 = 64.
        n_kv = (s.img_size[0] // 32) * (s.img_size[1] // 32)
        self.kv_pos_embed = nn.Parameter(torch.randn(1, n_kv, kv_dim) * 0.02)

    def forward(self, stage4_tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, C4) Swin stage-4 tokens -> (B, n_ctx, ctx_dim) prompt."""
        b = stage4_tokens.shape[0]
        context = stage4_tokens + self.kv_pos_embed
        x = self.query_feat.expand(b, -1, -1)
        pos = self.pos_embed.expand(b, -1, -1)
        for block in self.blocks:
            x = block(x, pos, context)
        return x
