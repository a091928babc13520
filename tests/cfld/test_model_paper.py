"""The paper-size model really runs (slow: ~1.2B parameters on the CPU, ~6 GB of memory)."""

from __future__ import annotations

import pytest
import torch

from methods.cfld.config import CFLDConfig
from methods.cfld.model import CFLDModel

pytestmark = pytest.mark.slow


def test_paper_model_forward_shapes_and_zero_hga():
    torch.manual_seed(0)
    model = CFLDModel(CFLDConfig.paper()).eval()
    with torch.inference_mode():
        prompt, biases = model.encode_appearance(torch.rand(1, 3, 256, 256) * 2 - 1)
        feats = model.encode_pose(torch.rand(1, 21, 256, 256))
        assert prompt.shape == (1, 16, 768)
        assert {k: tuple(v.shape[1:]) for k, v in biases.items()} == {
            **{f"block_{i}_cross_attn_q": (4096, 320) for i in (11, 10, 9)},
            **{f"block_{i}_cross_attn_q": (1024, 640) for i in (8, 7, 6)},
            **{f"block_{i}_cross_attn_q": (256, 1280) for i in (5, 4, 3)},
        }
        assert [tuple(f.shape[1:]) for f in feats] == [(320, 64, 64), (640, 32, 32), (1280, 16, 16)]
        lat = torch.randn(1, 4, 64, 64)
        eps = model.unet_forward(lat, 981, prompt, feats, biases)
        assert eps.shape == lat.shape and torch.isfinite(eps).all()
        # Fresh model: HGA biases are exactly zero, so they change nothing.
        assert torch.equal(eps, model.unet_forward(lat, 981, prompt, feats))
