"""DINOv2 features: our ViT equals Hugging Face's Dinov2Model on the same (tiny, random) official
weights; the position-grid resampling is the official scale-factor rule; the preprocessing is
dgm-eval's torchvision transform."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _dinov2_data import tiny_dinov2_state, write_tiny_dinov2
from PIL import Image

from bench.metrics.dinov2 import (
    INTERPOLATE_OFFSET,
    DinoV2Features,
    DinoViT,
    dgm_eval_view,
    interpolate_pos_embed,
)


def _hf_model(state: dict[str, torch.Tensor], image_size: int, pos_embed: torch.Tensor | None = None):
    """transformers' Dinov2Model (eager attention) with the official state dict converted to its names."""
    from transformers import Dinov2Config, Dinov2Model

    dim = state["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    config = Dinov2Config(
        hidden_size=dim,
        num_hidden_layers=depth,
        num_attention_heads=dim // 64,
        mlp_ratio=4,
        image_size=image_size,
        patch_size=14,
        layerscale_value=1.0,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        qkv_bias=True,
        use_swiglu_ffn=False,
        attn_implementation="eager",
    )
    hf = {
        "embeddings.cls_token": state["cls_token"],
        "embeddings.mask_token": state["mask_token"],
        "embeddings.position_embeddings": state["pos_embed"] if pos_embed is None else pos_embed,
        "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
        "layernorm.weight": state["norm.weight"],
        "layernorm.bias": state["norm.bias"],
    }
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"encoder.layer.{i}."
        for name in ("weight", "bias"):
            q, k, v = state[src + f"attn.qkv.{name}"].chunk(3, dim=0)
            hf |= {
                dst + f"attention.q_proj.{name}": q,
                dst + f"attention.k_proj.{name}": k,
                dst + f"attention.v_proj.{name}": v,
                dst + f"attention.o_proj.{name}": state[src + f"attn.proj.{name}"],
                dst + f"norm1.{name}": state[src + f"norm1.{name}"],
                dst + f"norm2.{name}": state[src + f"norm2.{name}"],
                dst + f"mlp.fc1.{name}": state[src + f"mlp.fc1.{name}"],
                dst + f"mlp.fc2.{name}": state[src + f"mlp.fc2.{name}"],
            }
        hf[dst + "layer_scale1.lambda1"] = state[src + "ls1.gamma"]
        hf[dst + "layer_scale2.lambda1"] = state[src + "ls2.gamma"]
    model = Dinov2Model(config)
    model.load_state_dict(hf, strict=True)
    return model.eval()


def test_vit_equals_transformers_dinov2_at_the_checkpoint_grid() -> None:
    state = tiny_dinov2_state(dim=128, depth=2, pos_grid=4)  # 56-px grid: no position resampling
    x = torch.randn(3, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = _hf_model(state, image_size=56)(pixel_values=x).pooler_output  # CLS after the final LayerNorm
        ours = DinoViT.from_state_dict(state).eval()(x)
    assert ours.shape == (3, 128)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_vit_equals_transformers_dinov2_at_224_px_from_the_518_px_grid() -> None:
    # The real geometry: the checkpoint's 37x37 grid resampled to 16x16. transformers resamples with
    # size=(16, 16), the official code with the scale factor (16 + 0.1) / 37, so the reference gets
    # the official grid handed in and checks everything else at 224 px.
    state = tiny_dinov2_state(dim=64, depth=2, pos_grid=37)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    pos16 = interpolate_pos_embed(state["pos_embed"], 16, 16)
    with torch.no_grad():
        ref = _hf_model(state, image_size=224, pos_embed=pos16)(pixel_values=x).pooler_output
        ours = DinoViT.from_state_dict(state).eval()(x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def _bicubic_scale_factor_reference(grid: np.ndarray, out: int, scale_factor: float) -> np.ndarray:
    """Independent float64 bicubic (Keys, a=-0.75, edge-clamped taps) of (M, M, D) to (out, out, D)
    with PyTorch's align_corners=False mapping for a given scale factor: src = (dst + 0.5) / s - 0.5."""
    a = -0.75

    def weights(t: float) -> np.ndarray:
        return np.array(
            [
                ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                ((a + 2) * t - (a + 3)) * t * t + 1,
                ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1,
                ((a * (2 - t) - 5 * a) * (2 - t) + 8 * a) * (2 - t) - 4 * a,
            ]
        )

    m = grid.shape[0]
    mat = np.zeros((out, m))  # 1-D resampling matrix, applied to rows and columns
    for o in range(out):
        src = (o + 0.5) / scale_factor - 0.5
        i0 = int(np.floor(src))
        for tap, w in zip(range(i0 - 1, i0 + 3), weights(src - i0)):
            mat[o, min(max(tap, 0), m - 1)] += w
    return np.einsum("oi,pj,ijd->opd", mat, mat, grid)


def test_position_grid_resampling_is_the_official_scale_factor_rule() -> None:
    state = tiny_dinov2_state(dim=64, depth=1, pos_grid=37)
    pos = state["pos_embed"]
    got = interpolate_pos_embed(pos, 16, 16)
    assert got.shape == (1, 1 + 16 * 16, 64)
    assert torch.equal(got[:, 0], pos[:, 0])  # the CLS position is kept as is
    grid = pos[0, 1:].double().reshape(37, 37, 64).numpy()
    ref = _bicubic_scale_factor_reference(grid, 16, (16 + INTERPOLATE_OFFSET) / 37)
    np.testing.assert_allclose(got[0, 1:].reshape(16, 16, 64).numpy(), ref, rtol=0, atol=2e-5)
    by_size = _bicubic_scale_factor_reference(grid, 16, 16 / 37)  # what size=(16, 16) would give
    assert np.abs(by_size - ref).max() > 1e-3  # the two rules really differ: the test can tell them apart
    assert interpolate_pos_embed(pos, 37, 37) is pos


def _dgm_eval_transform(img: np.ndarray) -> torch.Tensor:
    """dgm-eval's DINOv2Encoder.transform (clean_resize=False), with torchvision's own transforms."""
    import torchvision.transforms as T

    tf = T.Compose(
        [
            T.Resize((224, 224), T.InterpolationMode.BICUBIC),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    return tf(Image.fromarray(img))


def test_extractor_is_dgm_eval_preprocessing_then_the_vit(tmp_path: Path) -> None:
    path = write_tiny_dinov2(tmp_path / "dinov2_vitl14_pretrain.pth", dim=64, depth=2, pos_grid=37)
    extractor = DinoV2Features(path)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (256, 176, 3), dtype=np.uint8) for _ in range(10)]
    views = [dgm_eval_view(img) for img in images]
    assert views[0].shape == (224, 224, 3) and views[0].dtype == np.uint8
    x = torch.stack([torch.from_numpy(v).permute(2, 0, 1) for v in views]).float() / 255.0
    feats = extractor(x)  # 10 images: two chunks of CHUNK=8 and 2
    assert feats.shape == (10, 64) and feats.dtype == torch.float32 and not feats.requires_grad
    net = DinoViT.from_state_dict(torch.load(path, weights_only=True)).eval()
    with torch.no_grad():
        ref = net(torch.stack([_dgm_eval_transform(img) for img in images]))
    torch.testing.assert_close(feats, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(x[3:4]), feats[3:4], rtol=1e-5, atol=1e-5)  # batch-independent
    with pytest.raises(ValueError, match="224"):
        extractor(torch.zeros(1, 3, 256, 176))


def test_state_dict_must_be_dinov2() -> None:
    with pytest.raises(ValueError, match="not a DINOv2"):
        DinoViT.from_state_dict({"conv.weight": torch.zeros(1)})
    state = tiny_dinov2_state(dim=64, depth=1, pos_grid=4)
    del state["blocks.0.ls1.gamma"]
    with pytest.raises(RuntimeError, match="ls1.gamma"):
        DinoViT.from_state_dict(state)


@pytest.mark.skipif(
    not os.environ.get("PGPIS_DINOV2_REPO"),
    reason="set PGPIS_DINOV2_REPO to a facebookresearch/dinov2 checkout to compare with the official code",
)
def test_vit_equals_the_official_dinov2_code() -> None:
    from functools import partial

    sys.path.insert(0, os.environ["PGPIS_DINOV2_REPO"])
    from dinov2.layers import MemEffAttention
    from dinov2.layers import NestedTensorBlock as Block
    from dinov2.models.vision_transformer import DinoVisionTransformer

    state = tiny_dinov2_state(dim=128, depth=2, pos_grid=37)
    official = DinoVisionTransformer(  # torch hub's dinov2_vitl14 settings, at tiny width and depth
        img_size=518,
        patch_size=14,
        embed_dim=128,
        depth=2,
        num_heads=2,
        mlp_ratio=4,
        block_fn=partial(Block, attn_class=MemEffAttention),
        init_values=1.0,
        ffn_layer="mlp",
        block_chunks=0,
        num_register_tokens=0,
        interpolate_antialias=False,
        interpolate_offset=0.1,
    )
    official.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(
            DinoViT.from_state_dict(state).eval()(x), official.eval()(x), rtol=0, atol=1e-6
        )
