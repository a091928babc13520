"""Shared by the CFLD pipeline, method and training tests: a micro model and a thread-count guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

# A micro CFLD (tiny widths, 16x16 latent of a 32x32 pixel-space image) so training runs in seconds.
MICRO_MODEL = {
    "base": "tiny",
    "gt_img_size": [32, 32],
    "swin": {"img_size": [64, 64]},
    "pose": {"img_size": [64, 64]},
    "unet": {"config": {"in_channels": 12, "out_channels": 12, "sample_size": 16}},
}

# Training settings of the micro model (a TrainSettings.from_dict mapping): pixel-space, no pretrained
# weights, batch 2, no checkpoints unless a test asks for them.
MICRO_TRAIN = {
    "model": MICRO_MODEL,
    "latent": {"kind": "pixel", "factor": 2},
    "init_unet": None,
    "init_swin": None,
    "sampling": {"scheduler": "ddim", "num_inference_steps": 2},
    "batch_size": 2,
    "mixed_precision": "no",
    "gradient_checkpointing": False,
    "lr": 1e-3,
    "warmup_steps": 2,
    "decay_epochs": [1000],
    "checkpoint_every": 1000,
    "num_workers": 0,
}


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on the small shared CPU, OpenMP oversubscription makes these tiny models'
    steps 10-50x slower."""
    with torch_threads(1):
        yield


def write_micro_checkpoint(folder: Path, sampling: dict | None = None, seed: int = 0) -> Path:
    """A folder as `pgpis train` writes it (config.json + model.safetensors + pipeline.json) with a
    random micro pixel-space model; ``sampling`` overrides its stored sampling settings."""
    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel
    from methods.cfld.train import save_final
    from methods.cfld.train_settings import TrainSettings
    from methods.cfld.vae import PixelCodec

    torch.manual_seed(seed)
    model = CFLDModel(CFLDConfig.from_dict(MICRO_MODEL))
    settings = TrainSettings.from_dict(
        {"sampling": sampling or {"scheduler": "ddim", "num_inference_steps": 3}}
    )
    save_final(model, PixelCodec(2), settings, folder, {"steps": 0})
    return folder
