"""The feature extractors set-level metrics read: one declaration each (weights, builder, input view).

An extractor takes float (B, 3, H, W) in [0, 1] and returns float32 (B, D) features. Its input is the
protocol's network view of each image (the eval-size image, or PIDM's cv2 view) unless it declares
its own ``cpu_view``: a function of the decoded eval-size uint8 image that runs on the decode
threads (DINOv2: dgm-eval's PIL bicubic stretch to 224x224). Every metric on an extractor shares
its one forward pass per image (``scoring.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.errors import ConfigError
from bench.plugins import load_target


@dataclass(frozen=True)
class Extractor:
    name: str
    weight: str  # key of weights.WEIGHTS
    build: str  # "module:callable" taking the weights path
    description: str
    cpu_view: str | None = None  # "module:function": uint8 (H, W, 3) eval image -> uint8 input view

    def view_function(self) -> Callable[[np.ndarray], np.ndarray] | None:
        return (
            None
            if self.cpu_view is None
            else load_target(self.cpu_view, f"extractor {self.name!r}: its view")
        )


EXTRACTORS: dict[str, Extractor] = {
    e.name: e
    for e in (
        Extractor(
            "ptincv3",
            "pt_inception",
            "bench.metrics.inception:PtInceptionV3",
            "pytorch-fid FID Inception v3 pool features (2048-d)",
        ),
        Extractor(
            "incv3tv",
            "inception_v3_tv",
            "bench.metrics.inception:TvInceptionV3",
            "torchvision Inception v3 IMAGENET1K_V1 pool features, GFLA/CFLD input scaling (2048-d)",
        ),
        Extractor(
            "dinov2_vitl14",
            "dinov2_vitl14",
            "bench.metrics.dinov2:DinoV2Features",
            "DINOv2 ViT-L/14 CLS token after the final norm (1024-d), dgm-eval preprocessing",
            cpu_view="bench.metrics.dinov2:dgm_eval_view",
        ),
    )
}


def get_extractor(name: str) -> Extractor:
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown feature extractor {name!r}; choose one of {', '.join(EXTRACTORS)}"
        ) from None


def build(name: str, weights_path: object) -> object:
    """The extractor module ``name`` with its weights loaded (torch.load(weights_only=True) inside)."""
    return load_target(get_extractor(name).build, f"extractor {name!r}: its builder")(weights_path)
