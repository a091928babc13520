"""LPIPS through the ``lpips`` package (v0.1 linear heads shipped with it), backbone from the torch cache.

The package would fetch the ImageNet backbone through torchvision itself; we build it with a
random backbone (``pnet_rand=True``) and copy in the weights we resolved and verified
(``weights.resolve``), loaded with ``weights_only=True``. The result is the same module
``lpips.LPIPS(net=...)`` builds, so values equal the package's for the same files.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from bench.metrics.device import chunk_size

BACKBONE_WEIGHT = {"alex": "alexnet", "vgg": "vgg16"}
CHUNK = 8  # pairs per forward pass on the CPU (bounds activation memory)
GPU_CHUNK = 128  # on a GPU: a whole batch per pass


def head_path(net: str, version: str = "0.1") -> Path:
    """The linear-head file the lpips package ships for ``net``."""
    import lpips

    return Path(inspect.getfile(lpips.LPIPS)).parent / "weights" / f"v{version}" / f"{net}.pth"


class Lpips(nn.Module):
    """LPIPS distance per pair; ``forward(pred, gt)`` takes inputs already in [-1, 1]."""

    def __init__(self, net: str, backbone_path: str | Path, version: str = "0.1") -> None:
        super().__init__()
        import lpips

        if net not in BACKBONE_WEIGHT:
            raise ValueError(f"LPIPS net {net!r} not supported; expected one of {sorted(BACKBONE_WEIGHT)}")
        with warnings.catch_warnings(), torch.device("meta"):
            # On the meta device the unused classifier (AlexNet: 240 MB) is never allocated; every
            # tensor the metric uses is loaded below, so nothing stays uninitialised.
            warnings.simplefilter("ignore")  # torchvision's deprecation notice for `pretrained=`
            self.model = lpips.LPIPS(
                net=net, version=version, pretrained=False, pnet_rand=True, verbose=False
            )
        self.model.to_empty(device="cpu")
        self.model.scaling_layer = lpips.ScalingLayer()  # constant buffers, rebuilt on the CPU
        heads = torch.load(head_path(net, version), map_location="cpu", weights_only=True)
        missing = self.model.load_state_dict(heads, strict=False).missing_keys
        if any(k.split(".")[0][3:].isdigit() for k in missing):  # lin0..lin4 (lins.* are aliases)
            raise ValueError(f"{head_path(net, version)}: LPIPS heads incomplete, missing {missing}")
        # mmap: only the pages of the feature tensors copied below are read; the classifier
        # (AlexNet: 240 MB of the 244 MB file) never enters memory (peak RSS, issue 3).
        state = torch.load(Path(backbone_path), map_location="cpu", weights_only=True, mmap=True)
        # lpips slices keep torchvision's `features.<index>` numbering as child names.
        modules: dict[int, nn.Module] = {}
        for slice_module in self.model.net.children():
            for name, child in slice_module.named_children():
                modules[int(name)] = child
        loaded = 0
        with torch.no_grad():
            for key, value in state.items():
                parts = key.split(".")
                if parts[0] != "features" or int(parts[1]) not in modules:
                    continue
                getattr(modules[int(parts[1])], parts[2]).copy_(value)
                loaded += 1
        expected = sum(1 for m in modules.values() for _ in m.parameters(recurse=False))
        if loaded != expected:
            raise ValueError(
                f"{backbone_path}: expected {expected} backbone tensors for LPIPS {net}, found {loaded}"
            )
        del state  # unmaps the file
        self.eval().requires_grad_(False)
        # channels_last, as the Inceptions: 7.7 instead of 9.5 ms per 256x176 pair on this CPU, values
        # within 3e-7 relative of the default layout (benchmarks/decode_overlap.py; parity tests: 1e-6).
        self.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(
        self,
        pred_pm1: torch.Tensor,
        gt_pm1: torch.Tensor,
        gt_features: Callable[[torch.Tensor, slice], list[torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """float64 (B,) distances; equals ``lpips.LPIPS.forward(pred, gt)`` of the same module.

        ``gt_features(gt_chunk, rows)``, if given, supplies the GT side's ``features`` for rows
        ``rows`` of the batch (the engine's per-target cache); by default they are computed here.
        """
        # Chunks of CHUNK pairs: both inputs' features, their normalised copies and squared
        # differences are alive at once (~8 MB per pair at 256x176); per pair the values do not
        # depend on the chunking.
        if gt_features is None:
            gt_features = lambda x, _rows: self.features(x)  # noqa: E731
        step = chunk_size(pred_pm1.device, CHUNK, GPU_CHUNK)
        out = [
            self.distance(
                self.features(pred_pm1[i : i + step]), gt_features(gt_pm1[i : i + step], slice(i, i + step))
            )
            for i in range(0, pred_pm1.shape[0], step)
        ]
        return torch.cat(out) if out else pred_pm1.new_zeros(0, dtype=torch.float64)

    @torch.inference_mode()
    def features(self, x_pm1: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised backbone features of each layer, as the package's forward forms them.

        Split from ``distance`` so that one image's features serve every pair that compares with it
        (the engine computes a target image's once for all its pairs).
        """
        import lpips

        outs = self.model.net.forward(self.model.scaling_layer(_channels_last(x_pm1)))
        return [lpips.normalize_tensor(o) for o in outs]

    @torch.inference_mode()
    def distance(self, feats_pred: list[torch.Tensor], feats_gt: list[torch.Tensor]) -> torch.Tensor:
        """float64 (B,) LPIPS from both sides' ``features``: per layer, the linear head on the squared
        difference, averaged over space, summed over layers (v0.1, ``spatial=False``)."""
        layers = [
            self.model.lins[k]((f0 - f1) ** 2).mean([2, 3], keepdim=True)
            for k, (f0, f1) in enumerate(zip(feats_pred, feats_gt, strict=True))
        ]
        val = layers[0]
        for layer in layers[1:]:  # the package's order: ((l0 + l1) + l2) + ...
            val = val + layer
        return val.reshape(-1).to(torch.float64)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.float().contiguous(memory_format=torch.channels_last)
