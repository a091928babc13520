"""Swin window attention trains bit-reproducibly with several CPU threads.

Its relative-position bias gathers 65,536 entries (window 16) from a 961-row table; the backward of
plain indexing accumulates the repeated rows in a thread-dependent order, which made two runs of the
same 2-thread training drift apart after a few hundred steps.
"""

from __future__ import annotations

import torch
from _cfld_micro import torch_threads

from methods.cfld.swin import WindowAttention


def _bias_gradient(attn: WindowAttention, x: torch.Tensor) -> torch.Tensor:
    attn.zero_grad(set_to_none=True)
    (attn(x, None) ** 2).sum().backward()
    return attn.relative_position_bias_table.grad.clone()


def test_position_bias_gradient_is_bit_identical_across_runs_with_threads() -> None:
    with torch_threads(2):
        torch.manual_seed(0)
        # The tiny config's first Swin stage: one head, one 16x16 window per image, batch 16 (with
        # plain indexing the gradients of these runs differed in the last bits).
        attn = WindowAttention(dim=32, ws=16, heads=1)
        x = torch.randn(16, 256, 32)
        first = _bias_gradient(attn, x)
        assert first.abs().sum() > 0
        for _ in range(10):
            assert torch.equal(_bias_gradient(attn, x), first)


def test_position_bias_is_the_table_gathered_by_the_index() -> None:
    torch.manual_seed(0)
    attn = WindowAttention(dim=8, ws=4, heads=2)
    n = 16
    expected = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]
    assert torch.equal(attn.position_bias(), expected.view(n, n, -1).permute(2, 0, 1))
