"""Checkpoints: the official two-file layout, our safetensors format, and the base-weight loaders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.errors import DataError, MissingWeightError
from methods.cfld.checkpoint import (
    from_official,
    load_official,
    load_pretrained,
    save_official,
    save_pretrained,
)
from methods.cfld.config import CFLDConfig
from methods.cfld.model import CFLDModel
from methods.cfld.pretrained import load_swin_imagenet, load_unet, load_vae
from methods.cfld.swin import SwinBackbone


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


def _model(seed: int) -> CFLDModel:
    torch.manual_seed(seed)
    return CFLDModel(small_config()).eval()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def source() -> CFLDModel:
    m = _model(0)
    with torch.no_grad():  # make the zero-initialised HGA convs non-trivial so they are checked too
        for p in m.appearance_encoder.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return m


def test_official_files_round_trip(source, tmp_path):
    save_official(source, tmp_path)
    main = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    unet = torch.load(tmp_path / "pytorch_model_1.bin", weights_only=True)
    assert next(iter(main)) == "learnable_vector" and all(k.startswith("model.") for k in unet)
    assert not any(k.startswith("unet.") for k in main)
    target = _model(1)
    assert not _same(source, target)
    load_official(target, tmp_path, strict=True)
    assert _same(source, target)
    # The two files may also be named explicitly.
    load_official(_model(2), [tmp_path / "pytorch_model.bin", tmp_path / "pytorch_model_1.bin"])
    # Or build the model from them (meta device + assign): nothing left on meta, same weights.
    built = from_official(tmp_path, small_config())
    assert not any(t.is_meta for t in built.state_dict().values())
    assert _same(source, built)


def test_official_loader_errors(source, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_official(_model(1), tmp_path / "nowhere")
    save_official(source, tmp_path)
    (tmp_path / "pytorch_model_1.bin").unlink()
    with pytest.raises(DataError, match="pytorch_model_1.bin is missing"):
        load_official(_model(1), tmp_path)
    save_official(source, tmp_path)
    main = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    main["decoder.extra"] = torch.zeros(1)
    del main["decoder.pos_embed"]
    torch.save(main, tmp_path / "pytorch_model.bin")
    with pytest.raises(DataError, match=r"missing decoder\.pos_embed; unexpected decoder\.extra"):
        load_official(_model(1), tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="weights_only"):
        load_official(_model(1), tmp_path)


def test_official_loader_rejects_other_config(source, tmp_path):
    save_official(source, tmp_path)
    cfg = small_config()
    cfg.decoder.heads = 1  # same shapes: still loads
    load_official(CFLDModel(cfg), tmp_path)
    cfg.appearance.depth = 2  # more blocks: missing keys
    with pytest.raises(DataError, match="does not fit the model config"):
        load_official(CFLDModel(cfg), tmp_path)


def test_safetensors_round_trip(source, tmp_path):
    save_pretrained(source, tmp_path / "ours")
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_pretrained(tmp_path / "ours")
    assert loaded.config.to_dict() == source.config.to_dict()
    assert _same(source, loaded)
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        prompt, hga = loaded.encode_appearance(torch.zeros(1, 3, 128, 128))
        torch.testing.assert_close(
            loaded.unet_forward(x, 3, prompt, hga_biases=hga),
            source.unet_forward(
                x, 3, *source.encode_appearance(torch.zeros(1, 3, 128, 128))[:1], hga_biases=hga
            ),
            rtol=1e-5,
            atol=1e-5,  # weights are bit-equal (above); kernels may pick other paths for mmap'd tensors
        )


def test_load_pretrained_errors(source, tmp_path):
    save_official(source, tmp_path)
    with pytest.raises(DataError, match="load_official"):
        load_pretrained(tmp_path)
    save_pretrained(source, tmp_path / "ours")
    (tmp_path / "ours" / "config.json").write_text("{broken")
    with pytest.raises(DataError, match="not valid JSON"):
        load_pretrained(tmp_path / "ours")


def test_load_unet_and_vae_from_local_folders(source, tmp_path):
    from methods.cfld.pretrained import build_vae

    root = tmp_path / "sd"
    source.unet.save_pretrained(root / "unet")  # .safetensors
    vae = build_vae(source.config.vae.config)
    vae.save_pretrained(root / "vae", safe_serialization=False)  # .bin (read with weights_only)
    unet = load_unet(root)  # the SD root (unet/ subfolder) ...
    assert all(torch.equal(v, source.unet.state_dict()[k]) for k, v in unet.state_dict().items())
    loaded_vae = load_vae(root / "vae")  # ... or the component folder itself
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in loaded_vae.state_dict().items())
    # A pretrained UNet plugs into the model.
    model = CFLDModel(small_config(), unet=unet)
    assert (
        model.unet is unet
        and model.unet.attn_processors[
            "up_blocks.1.attentions.0.transformer_blocks.0.attn2.processor"
        ].block_idx
        == 3
    )


def test_missing_base_weights_name_the_files(tmp_path):
    (tmp_path / "sd" / "unet").mkdir(parents=True)
    (tmp_path / "sd" / "unet" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightError, match=r"diffusion_pytorch_model\.safetensors.*huggingface-cli"):
        load_unet(tmp_path / "sd")
    with pytest.raises(MissingWeightError, match=r"vae/config\.json"):
        load_vae(tmp_path / "sd")
    # Offline (conftest sets HF_HUB_OFFLINE=1, HF_HOME is empty): the hub id fails at once, clearly.
    with pytest.raises(MissingWeightError, match="stable-diffusion-v1-5/stable-diffusion-v1-5"):
        load_unet("stable-diffusion-v1-5/stable-diffusion-v1-5")
    with pytest.raises(MissingWeightError, match=r"swin_base_patch4_window12_384_22kto1k\.pth.*github\.com"):
        load_swin_imagenet(SwinBackbone(small_config()), tmp_path / "swin.pth")


def test_swin_imagenet_tables_are_interpolated(tmp_path):
    cfg = small_config()
    torch.manual_seed(0)
    target = SwinBackbone(cfg)
    # A "window 12" checkpoint for the same widths: 23x23 tables, plus keys the loader must skip.
    state = {k: torch.randn_like(v.float()) for k, v in target.state_dict().items() if v.is_floating_point()}
    state = {k: v for k, v in state.items() if not k.endswith("attn_mask")}
    for k in [k for k in state if k.endswith("relative_position_bias_table")]:
        state[k] = torch.randn(23 * 23, state[k].shape[1])
        state[k.replace("bias_table", "index")] = torch.zeros(144, 144, dtype=torch.long)
    state["head.weight"] = torch.randn(1000, 256)
    torch.save({"model": state}, tmp_path / "swin.pth")

    ignored = load_swin_imagenet(target, tmp_path / "swin.pth")
    assert ignored == ["head.weight"]
    loaded = target.state_dict()
    table = "layers.0.blocks.0.attn.relative_position_bias_table"  # window 16 -> 31x31
    heads = state[table].shape[1]
    expect = F.interpolate(state[table].T.reshape(1, heads, 23, 23), size=(31, 31), mode="bicubic")
    torch.testing.assert_close(loaded[table], expect.reshape(heads, 961).T, rtol=0, atol=0)
    assert loaded["layers.2.blocks.0.attn.relative_position_bias_table"].shape[0] == 15 * 15  # clamped 8x8
    assert torch.equal(loaded["layers.0.blocks.0.mlp.fc1.weight"], state["layers.0.blocks.0.mlp.fc1.weight"])
    # Buffers are recomputed, not taken from the file.
    assert loaded["layers.0.blocks.0.attn.relative_position_index"].max() == 31 * 31 - 1


def test_safetensors_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """safetensors writes its header's metadata in a per-process hash-map order (a retrained model's
    file differed in those bytes alone); ours sorts it, so each save of the same weights is identical,
    in this process and in fresh ones, and reads back unchanged."""
    import subprocess
    import sys

    from safetensors import safe_open
    from safetensors.torch import load_file

    from methods.cfld.checkpoint import safetensors_bytes

    tensors = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(4, dtype=torch.float16)}
    meta = {"model": "cfld", "format": "pt", "x": "1", "w": "2"}
    first = safetensors_bytes(tensors, meta)
    assert all(safetensors_bytes(tensors, meta) == first for _ in range(20))
    code = (
        "import sys, torch; from methods.cfld.checkpoint import safetensors_bytes as s; "
        "t = {'b.weight': torch.arange(6.0).reshape(2, 3), 'a.bias': torch.ones(4, dtype=torch.float16)}; "
        "sys.stdout.buffer.write(s(t, {'model': 'cfld', 'format': 'pt', 'x': '1', 'w': '2'}))"
    )
    for _ in range(3):
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
        assert other == first
    path = tmp_path / "m.safetensors"
    path.write_bytes(first)
    back = load_file(str(path))
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == meta
    assert list(json.loads(first[8 : 8 + int.from_bytes(first[:8], "little")])["__metadata__"]) == [
        "format", "model", "w", "x",
    ]  # fmt: skip
