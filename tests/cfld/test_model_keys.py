"""The paper-config model has exactly the official checkpoints' keys, shapes, dtypes and order.

Built on the meta device: no memory, ~1 s after imports.
"""

from __future__ import annotations

import pytest
import torch

from methods.cfld.checkpoint import official_state_dicts
from methods.cfld.config import CFLDConfig
from methods.cfld.model import CFLDModel


def _manifest(path) -> list[tuple[str, str, str]]:
    return [tuple(line.rstrip("\n").split("\t")) for line in path.read_text().splitlines() if line]


def _rows(sd: dict[str, torch.Tensor]) -> list[tuple[str, str, str]]:
    return [(k, ",".join(map(str, v.shape)), str(v.dtype).removeprefix("torch.")) for k, v in sd.items()]


@pytest.fixture(scope="module")
def paper_model() -> CFLDModel:
    with torch.device("meta"):
        return CFLDModel(CFLDConfig.paper())


def test_state_dicts_equal_official_manifests(paper_model, cfld_parity_dir):
    main, unet = official_state_dicts(paper_model)
    expect_main = _manifest(cfld_parity_dir / "keys-pytorch_model.tsv")
    expect_unet = _manifest(cfld_parity_dir / "keys-pytorch_model_1.tsv")
    assert len(expect_main) == 1301 and len(expect_unet) == 686
    assert _rows(main) == expect_main  # keys, shapes, dtypes and order
    assert _rows(unet) == expect_unet
    # The 26 persistent Swin buffers are part of it (registered, not dropped).
    buffers = [k for k in main if k.endswith(("relative_position_index", "attn_mask"))]
    assert len(buffers) == 26
    assert sorted(k for k in buffers if k.endswith("attn_mask")) == [
        "backbone.layers.0.blocks.1.attn_mask",
        "backbone.layers.1.blocks.1.attn_mask",
    ]


def test_paper_trainable_split_matches_official_counts(paper_model):
    # Counts from the parity README (the official build_model + UNet wrapper).
    trainable = list(paper_model.trainable_parameters())
    assert sum(p.numel() for p in trainable) == 248_224_312
    unet_trainable = {n for n, p in paper_model.unet.named_parameters() if p.requires_grad}
    assert sum(p.numel() for n, p in paper_model.unet.named_parameters() if n in unet_trainable) == 10_321_920
    assert len(unet_trainable) == 18
    assert all(".attn2.to_k." in n or ".attn2.to_v." in n for n in unet_trainable)
    assert all(n.startswith(("up_blocks.1.", "up_blocks.2.", "up_blocks.3.")) for n in unet_trainable)
    counts = {
        name: sum(p.numel() for p in getattr(paper_model, name).parameters())
        for name in ("backbone", "appearance_encoder", "pose_encoder", "decoder", "unet")
    }
    assert counts == {
        "backbone": 86_991_864,
        "appearance_encoder": 22_549_632,
        "pose_encoder": 30_636_480,
        "decoder": 97_712_128,
        "unet": 859_520_964,
    }
