"""The benchmark's official-maths reference leg computes the same attention as SDPA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "official_attention.py"
_spec = importlib.util.spec_from_file_location("official_attention", _PATH)
official_attention = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(official_attention)


@pytest.mark.parametrize(
    "q_shape,kv_len,mask_shape,scale",
    [
        ((2, 4, 64, 8), 64, None, None),  # UNet self-attention (b, heads, n, d)
        ((2, 4, 64, 8), 7, None, 0.3),  # cross-attention to a short prompt, explicit scale
        ((3, 2, 5, 16, 8), 16, (2, 1, 16, 16), None),  # Swin: (B, nW, heads, N, d) + per-window bias
        ((2, 4, 16, 8), 16, (1, 4, 16, 16), None),  # Swin without shift: (1, heads, N, N) bias
    ],
)
def test_explicit_attention_equals_sdpa(q_shape, kv_len, mask_shape, scale) -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(*q_shape, generator=g)
    kv_shape = (*q_shape[:-2], kv_len, q_shape[-1])
    k, v = torch.randn(*kv_shape, generator=g), torch.randn(*kv_shape, generator=g)
    mask = None if mask_shape is None else torch.randn(*mask_shape, generator=g)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    got = official_attention.explicit_attention(q, k, v, attn_mask=mask, scale=scale)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_bool_mask_and_unsupported_options() -> None:
    q = k = v = torch.randn(1, 2, 6, 4)
    keep = torch.rand(6, 6) > 0.3
    keep.fill_diagonal_(True)
    torch.testing.assert_close(
        official_attention.explicit_attention(q, k, v, attn_mask=keep),
        F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
    )
    with pytest.raises(NotImplementedError, match="causal"):
        official_attention.explicit_attention(q, k, v, is_causal=True)


def test_patch_reaches_the_cfld_modules_and_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The modules look F.scaled_dot_product_attention up at call time, so the swap reaches them
    with the same result; the original is back afterwards, also when the block raises."""
    from methods.cfld.blocks import Attention

    torch.manual_seed(0)
    attn = Attention(16, 2, 8).eval()
    x = torch.randn(1, 10, 16)
    want = attn(x)
    calls: list[int] = []
    real = official_attention.explicit_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(official_attention, "explicit_attention", counting)
    original = F.scaled_dot_product_attention
    with pytest.raises(RuntimeError, match="boom"):
        with official_attention.official_attention_maths():
            torch.testing.assert_close(attn(x), want, atol=1e-6, rtol=1e-5)
            raise RuntimeError("boom")
    assert len(calls) == 1  # the one attention of the one forward
    assert F.scaled_dot_product_attention is original
