"""The official CFLD code's attention maths, for a same-machine reference timing.

The official code computes every attention with xformers (``ResidualXFormersAttnProcessor`` in its
``models/unet.py``), which has no CPU kernels. Without xformers, the maths left is diffusers' classic
``AttnProcessor``: heads folded into the batch, the full score matrix materialised with
``baddbmm(mask or empty, Q, K^T, alpha=scale)``, a softmax over it, and ``bmm`` with V. The CFLD
parity README's CPU timings (18.0 s per step, 3.35 s non-UNet) are of that maths; its SDPA
figures (8.9 s, 1.15 s) are of the same network with ``F.scaled_dot_product_attention``.

Our modules call ``F.scaled_dot_product_attention`` everywhere (UNet processors, decoder, HGA
appearance encoder, Swin windows), so :func:`official_attention_maths` swaps that one function for
:func:`explicit_attention` and the same weights then run the official maths. This lets
``benchmarks/cfld_sampling.py`` time the official implementation's work on the machine at hand
instead of comparing against seconds measured on another CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F


def explicit_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``softmax(Q K^T * scale + mask) V`` with the score matrix materialised (diffusers' classic
    ``AttnProcessor``); same signature and result as ``F.scaled_dot_product_attention``."""
    if dropout_p or is_causal or enable_gqa:
        raise NotImplementedError("explicit_attention: dropout, causal masks and GQA are not used by CFLD")
    *lead, n, d = query.shape
    m = key.shape[-2]
    scale = d**-0.5 if scale is None else scale
    q = query.reshape(-1, n, d)
    k = key.expand(*lead, m, d).reshape(-1, m, d)
    v = value.expand(*lead, m, value.shape[-1]).reshape(-1, m, value.shape[-1])
    if attn_mask is None:
        base, beta = torch.empty(q.shape[0], n, m, dtype=q.dtype, device=q.device), 0.0
    else:
        if attn_mask.dtype == torch.bool:
            attn_mask = torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(~attn_mask, float("-inf"))
        base, beta = attn_mask.to(q.dtype).expand(*lead, n, m).reshape(-1, n, m), 1.0
    probs = torch.baddbmm(base, q, k.transpose(1, 2), beta=beta, alpha=scale).softmax(dim=-1)
    return torch.bmm(probs, v).view(*lead, n, v.shape[-1])


@contextmanager
def official_attention_maths() -> Iterator[None]:
    """Within the block, ``F.scaled_dot_product_attention`` is :func:`explicit_attention`."""
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = explicit_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
