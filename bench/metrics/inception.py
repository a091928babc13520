"""The two Inception-v3 feature extractors used for FID in this field (protocols.md §2.1).

- ``ptincv3``: pytorch-fid's ``InceptionV3`` with the TF-ported FID weights
  (``pt_inception-2015-12-05``); input [0, 1] -> bilinear 299 -> ``2x - 1``. The standard FID.
- ``incv3tv``: torchvision ``inception_v3`` IMAGENET1K_V1 truncated after the final average pool,
  with the GFLA/PIDM/CFLD input rule: bilinear 299 (no antialias), then per channel
  ``x * std/0.5 + (mean - 0.5)/0.5``. Numbers from it are not comparable to standard FID.

Both take float (B, 3, H, W) in [0, 1] and return float32 (B, 2048). Weights are loaded with
``torch.load(weights_only=True)`` into a freshly built skeleton; nothing is downloaded here.
Both run in channels_last, which is ~1.6x faster on this CPU and agrees with the default layout
far inside the FID tolerance (tests check it against the reference modules).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIMS = 2048
CHUNK = 4  # images per forward pass; bounds activation memory (~130 MB less than 8; speed is the same)
GPU_CHUNK = 128  # on a GPU: a whole batch per pass

# ImageNet statistics used by torchvision's transform_input and the GFLA-lineage scaling.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def fid_inception_skeleton() -> nn.Module:
    """pytorch-fid's FID Inception structure with random weights (its own blocks, nothing loaded)."""
    from pytorch_fid import inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def torchvision_inception_skeleton() -> nn.Module:
    """torchvision ``inception_v3`` as IMAGENET1K_V1 is saved (with the aux head), random weights."""
    from torchvision.models import inception_v3

    return inception_v3(weights=None, aux_logits=True, init_weights=False)


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict with 4-D (conv) weights already in channels_last, converted one at a time.

    Converting after loading would keep the loaded and the converted copy alive together (and a
    mmap'd file's touched pages count as resident while it is mapped): ~100 MB more peak RSS.
    Here each entry is replaced as soon as its converted copy exists, so the old one is freed.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key, value in state.items():
        if value.dim() == 4:
            state[key] = value.contiguous(memory_format=torch.channels_last)
    return state


def _loaded(build: Callable[[], nn.Module], state: dict[str, torch.Tensor]) -> nn.Module:
    """Build on the meta device (no random init, no memory) and take the loaded tensors as parameters."""
    with torch.device("meta"):
        net = build()
    net.load_state_dict(state, assign=True)
    return net


class PtInceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3([3])`` (resize_input, normalize_input) with weights loaded safely."""

    name = "ptincv3"

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from pytorch_fid import inception as pfi

        state = _load_state(Path(weights_path))

        def build() -> nn.Module:
            return _loaded(fid_inception_skeleton, state)

        # pytorch-fid would fetch the weights itself with weights_only=False; hand it ours instead.
        with mock.patch.object(pfi, "fid_inception_v3", build):
            self.net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[FEATURE_DIMS]])
        self.eval().requires_grad_(False)
        self.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _chunked(x, lambda c: self.net(c.float().contiguous(memory_format=torch.channels_last))[0])


class TvInceptionV3(nn.Module):
    """torchvision Inception v3 pool features with the GFLA/CFLD input scaling (see module doc)."""

    name = "incv3tv"

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        net = _loaded(torchvision_inception_skeleton, _load_state(Path(weights_path)))
        self.blocks = nn.Sequential(
            net.Conv2d_1a_3x3,
            net.Conv2d_2a_3x3,
            net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1,
            net.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
            net.Mixed_7a,
            net.Mixed_7b,
            net.Mixed_7c,
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        # float32 constants equal to the Python scalars the reference scripts multiply by.
        self.register_buffer("scale", torch.tensor([s / 0.5 for s in _IMAGENET_STD]).view(1, 3, 1, 1))
        self.register_buffer(
            "shift", torch.tensor([(m - 0.5) / 0.5 for m in _IMAGENET_MEAN]).view(1, 3, 1, 1)
        )
        self.eval().requires_grad_(False)
        self.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _chunked(x, self._features)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = x * self.scale + self.shift
        return self.blocks(x.contiguous(memory_format=torch.channels_last))


def _chunked(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Run ``fn`` over chunks of ``CHUNK`` images on the CPU (299x299 activations of 32 images need
    ~0.5 GB of RAM), ``GPU_CHUNK`` on a GPU (throughput)."""
    step = CHUNK if x.device.type == "cpu" else GPU_CHUNK
    outs = [fn(x[i : i + step]).reshape(min(step, x.shape[0] - i), -1) for i in range(0, x.shape[0], step)]
    return torch.cat(outs) if outs else x.new_zeros((0, FEATURE_DIMS))
