"""Tiny CFLD model: shapes, the zero-initialised HGA path, freezing, configs."""

from __future__ import annotations

import pytest
import torch

from bench.errors import ConfigError
from methods.cfld.config import CFLDConfig
from methods.cfld.model import CFLDModel


def small_config() -> CFLDConfig:
    """The tiny architecture at half resolution (128x128 conditioning, 32x32 latent): fast on CPU."""
    return CFLDConfig.from_dict(
        {
            "base": "tiny",
            "swin": {"img_size": [128, 128]},
            "pose": {"img_size": [128, 128]},
            "gt_img_size": [256, 256],
        }
    )


@pytest.fixture(scope="module")
def model() -> CFLDModel:
    torch.manual_seed(0)
    return CFLDModel(small_config()).eval()


@pytest.fixture(scope="module")
def inputs(model):
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 128, 128, generator=g) * 2 - 1
    pose = torch.rand(2, 21, 128, 128, generator=g)
    lat = torch.randn(2, 4, 32, 32, generator=g)
    with torch.no_grad():
        prompt, biases = model.encode_appearance(img)
        feats = model.encode_pose(pose)
    return lat, prompt, biases, feats


def test_shapes(model, inputs):
    lat, prompt, biases, feats = inputs
    assert prompt.shape == (2, 16, 64)
    assert list(biases) == [f"block_{i}_cross_attn_q" for i in (11, 10, 9, 8, 7, 6, 5, 4, 3)]
    assert [tuple(biases[f"block_{i}_cross_attn_q"].shape) for i in (11, 8, 5)] == [
        (2, 1024, 32),
        (2, 256, 64),
        (2, 64, 64),
    ]
    assert [tuple(f.shape) for f in feats] == [(2, 32, 32, 32), (2, 64, 16, 16), (2, 64, 8, 8)]
    with torch.no_grad():
        assert model.unet_forward(lat, 10, prompt, feats, biases).shape == lat.shape
    with pytest.raises(ConfigError, match=r"\(B, 3, 128, 128\).*got \(1, 3, 256, 176\)"):
        model.encode_appearance(torch.zeros(1, 3, 256, 176))
    with pytest.raises(ConfigError, match="pose map"):
        model.encode_pose(torch.zeros(1, 18, 128, 128))


def test_hga_is_zero_at_init_and_changes_output_once_trained(model, inputs):
    lat, prompt, biases, feats = inputs
    assert all(not v.any() for v in biases.values())  # zero conv_out -> exact zeros
    with torch.no_grad():
        plain = model.unet_forward(lat, 500, prompt, feats)
        with_hga = model.unet_forward(lat, 500, prompt, feats, biases)
        assert torch.equal(plain, with_hga)
        # The injection itself is live: a non-zero bias on one block changes the output.
        bumped = {k: torch.full_like(v, 0.5) if k == "block_9_cross_attn_q" else v for k, v in biases.items()}
        assert not torch.allclose(plain, model.unet_forward(lat, 500, prompt, feats, bumped))


def test_pose_adapter_is_live_at_init(model, inputs):
    # Unlike HGA, the official pose adapter has no zero init: its features change the UNet output
    # from the first step (T2I-Adapter style). Zero features are the same as no features.
    lat, prompt, _, feats = inputs
    with torch.no_grad():
        plain = model.unet_forward(lat, 500, prompt)
        assert torch.equal(plain, model.unet_forward(lat, 500, prompt, [torch.zeros_like(f) for f in feats]))
        assert not torch.allclose(plain, model.unet_forward(lat, 500, prompt, feats))


def test_unet_forward_leaves_inputs_alone_and_batches_consistently(model, inputs):
    lat, prompt, biases, feats = inputs
    given = list(feats)
    with torch.no_grad():
        both = model.unet_forward(lat, 500, prompt, given, biases)
        first = model.unet_forward(
            lat[:1], 500, prompt[:1], [f[:1] for f in feats], {k: v[:1] for k, v in biases.items()}
        )
    assert len(given) == 3  # diffusers pops from the list; we pass a copy
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_keeps_hga_gradients():
    # Checkpointed blocks recompute their forward during backward; the HGA biases must reach
    # that recomputation too (they travel in cross_attention_kwargs), or gradients go wrong silently.
    torch.manual_seed(0)
    model = CFLDModel(small_config()).train()
    with torch.no_grad():
        for p in model.appearance_encoder.zero_conv_outs.parameters():
            p.normal_(0, 0.05)
    g = torch.Generator().manual_seed(2)
    img, lat = torch.randn(1, 3, 128, 128, generator=g), torch.randn(1, 4, 32, 32, generator=g)

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad()
        prompt, biases = model.encode_appearance(img)
        model.unet_forward(lat, 500, prompt, hga_biases=biases).square().mean().backward()
        return {n: p.grad.clone() for n, p in model.appearance_encoder.named_parameters()}

    plain = grads()
    model.unet.enable_gradient_checkpointing()
    checkpointed = grads()
    assert any(v.abs().sum() > 0 for v in plain.values())
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-4, atol=1e-7, msg=name)


def test_trainable_parameters_paper_rule_on_tiny():
    cfg = small_config()
    cfg.unet.train_all = False
    m = CFLDModel(cfg)
    trained = {id(p) for p in m.trainable_parameters()}
    names = {n for n, p in m.named_parameters() if id(p) in trained}
    unet = sorted(n for n in names if n.startswith("unet."))
    assert len(unet) == 18 and all(".attn2.to_k." in n or ".attn2.to_v." in n for n in unet)
    assert "learnable_vector" in names and any(n.startswith("backbone.") for n in names)
    full = CFLDModel(small_config())
    assert len(list(full.trainable_parameters())) == len(list(full.parameters()))


def test_config_round_trip_and_errors(tmp_path):
    cfg = small_config()
    assert CFLDConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    (tmp_path / "c.yaml").write_text("base: tiny\ndecoder: {depth: 3}\n")
    assert CFLDConfig.from_yaml(tmp_path / "c.yaml").decoder.depth == 3
    assert CFLDConfig.paper().decoder.ctx_dim == 768 and CFLDConfig.paper().swin.depths == [2, 2, 18, 2]
    with pytest.raises(ConfigError, match="unknown key cfld.swin.embed"):
        CFLDConfig.from_dict({"swin": {"embed": 3}})
    with pytest.raises(ConfigError, match="ctx_dim"):
        CFLDConfig.from_dict({"base": "tiny", "decoder": {"ctx_dim": 32}})
    with pytest.raises(ConfigError, match="does not exist"):
        CFLDConfig.from_yaml(tmp_path / "absent.yaml")
