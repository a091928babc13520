"""CFLD's hooks into a stock diffusers ``UNet2DConditionModel``.

- HGA: every attention of the UNet gets a :class:`CFLDAttnProcessor` (PyTorch SDPA). The one on
  the cross-attention (attn2) of each up-block transformer knows its official block index
  ``up_block * len(resnets) + j`` (11..3 for SD-1.5) and adds ``hga_biases["block_{idx}_cross_attn_q"]``
  to ``to_q(hidden_states)``. The biases travel as ``cross_attention_kwargs={"hga_biases": ...}``:
  diffusers hands that dict to every transformer block, also inside gradient checkpointing, so a
  recomputed forward sees the same biases (a side channel set around the call would not). Every
  processor accepts the keyword, so diffusers never warns about it.
- Pose: the adapter features go in as ``down_intrablock_additional_residuals``: diffusers adds the
  i-th one after the last ResNet/attention pair of the i-th ``CrossAttnDownBlock2D`` (the
  T2I-Adapter path). This is exactly what diffusers 0.19 did for ``down_block_additional_residuals``
  with ``mid_block_additional_residual=None``, which the official code relies on; in 0.42 that
  spelling is a deprecated alias of the same path.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

from methods.cfld.appearance_encoder import bias_key


class CFLDAttnProcessor:
    """SDPA attention; with a ``block_idx`` it adds that block's HGA bias to the query."""

    def __init__(self, block_idx: int | None = None) -> None:
        self.block_idx = block_idx
        self.key = bias_key(block_idx) if block_idx is not None else None

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        hga_biases: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        # The UNet's transformer attentions: 3-D tokens, no group/spatial norm (checked at install).
        b, n, _ = hidden_states.shape
        query = attn.to_q(hidden_states)
        if self.key is not None and hga_biases is not None and self.key in hga_biases:
            query = query + hga_biases[self.key]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], b)
            attention_mask = attention_mask.view(b, attn.heads, -1, attention_mask.shape[-1])
        key = attn.to_k(context)
        value = attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(b, -1, attn.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=attn.scale)
        out = out.transpose(1, 2).reshape(b, n, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def up_block_transformers(unet: UNet2DConditionModel) -> Iterator[tuple[int, torch.nn.Module]]:
    """Yield ``(official block index, BasicTransformerBlock)`` for every up-block transformer."""
    for i, block in enumerate(unet.up_blocks):
        for j, t2d in enumerate(getattr(block, "attentions", None) or []):
            for tb in t2d.transformer_blocks:
                yield i * len(block.resnets) + j, tb


def install_processors(unet: UNet2DConditionModel) -> None:
    """SDPA processors everywhere; the up-block cross-attentions also take their HGA bias."""
    for name, module in unet.named_modules():
        if isinstance(module, Attention):
            extras = (module.group_norm, module.spatial_norm, module.norm_q, module.norm_k, module.norm_cross)
            if any(e is not None for e in extras):
                raise ValueError(f"CFLD: UNet attention {name} has norms the CFLD processor does not handle")
            module.set_processor(CFLDAttnProcessor())
    for idx, tb in up_block_transformers(unet):
        tb.attn2.set_processor(CFLDAttnProcessor(idx))


def build_unet(config: dict) -> UNet2DConditionModel:
    """A randomly initialised UNet from a diffusers config dict (keys starting with '_' ignored)."""
    return UNet2DConditionModel.from_config({k: v for k, v in config.items() if not k.startswith("_")})
