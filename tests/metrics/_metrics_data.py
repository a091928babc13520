"""Helpers of the metric tests (imported as ``_metrics_data``: ``conftest`` is taken)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.metrics import weights

TRAIN_NAMES = [f"fashionWOMENDressesid{i:08d}01_1front.jpg" for i in range(1, 6)]
TEST_NAMES = [f"fashionMENDenimid{i:08d}02_1front.jpg" for i in range(1, 5)]
HIGHRES = (150, 102)  # a small stand-in for 1101x750 with a similar aspect


def _small_fc(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # LPIPS uses only the conv features; stride-0 zeros keep the classifier keys at a few bytes.
    return {
        k: (torch.zeros(1).expand(v.shape) if k.startswith("classifier") and v.dim() == 2 else v)
        for k, v in sd.items()
    }


def calibrated(net: torch.nn.Module, n: int = 3) -> torch.nn.Module:
    """Set BatchNorm running statistics from a few smooth random images.

    With default init (running mean 0, var 1) activations shrink layer by layer and the 2048-d
    features of every image end up nearly identical (FID ~ 1e-15), which would make FID tests
    vacuous. Calibrated statistics keep every layer at unit scale, so features differ per image.
    """
    rng = np.random.default_rng(7)
    x = torch.stack(
        [torch.from_numpy(smooth_image(rng, (299, 299))).permute(2, 0, 1) for _ in range(n)]
    ).float()
    x = x / 127.5 - 1
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(x)
    return net.eval()


def write_weight_store(store: Path) -> Path:
    """Random-init weights in the real formats and file names (torch.save'd state dicts)."""
    from torchvision.models import alexnet

    from bench.metrics.inception import fid_inception_skeleton, torchvision_inception_skeleton

    store.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1234)
    torch.save(
        calibrated(fid_inception_skeleton()).state_dict(), store / weights.WEIGHTS["pt_inception"].filename
    )
    torch.save(
        calibrated(torchvision_inception_skeleton()).state_dict(),
        store / weights.WEIGHTS["inception_v3_tv"].filename,
    )
    torch.save(_small_fc(alexnet(weights=None).state_dict()), store / weights.WEIGHTS["alexnet"].filename)
    return store


def link_weights(store: Path, keys: tuple[str, ...] | None = None) -> Path:
    """Symlink weights from ``store`` into ``$TORCH_HOME/hub/checkpoints`` (all, or only ``keys``)."""
    dest = weights.checkpoints_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for key, spec in weights.WEIGHTS.items():
        src = store / spec.filename
        if src.is_file() and (keys is None or key in keys):
            os.symlink(src, dest / spec.filename)
    return dest


def smooth_image(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A smooth random RGB uint8 image (bicubic-upsampled noise), so SSIM is not trivially 0 or 1."""
    small = torch.from_numpy(
        rng.random((1, 3, max(2, size[0] // 12), max(2, size[1] // 12)), dtype=np.float32)
    )
    big = torch.nn.functional.interpolate(small, size=size, mode="bicubic", align_corners=False)
    return (big[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def write_root(root: Path, seed: int = 0, n_pairs: int | None = None) -> Path:
    """A DeepFashion-format root: 5 train and 4 test images; test pairs: each image a target once
    (or ``n_pairs`` distinct ordered pairs, for odd counts)."""
    rng = np.random.default_rng(seed)
    kp = "[" + ", ".join(["10"] * 18) + "]"
    for split, names in (("train", TRAIN_NAMES), ("test", TEST_NAMES)):
        folder = root / f"{split}_highres"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            Image.fromarray(smooth_image(rng, HIGHRES)).save(folder / name, quality=95)
        pairs = [(names[(i + 1) % len(names)], names[i]) for i in range(len(names))]
        if n_pairs is not None and split == "test":
            allp = [(a, b) for b in names for a in names if a != b]
            pairs = allp[:n_pairs]
        (root / f"fasion-resize-pairs-{split}.csv").write_text(
            "from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs)
        )
        rows = "".join(f"{n}: {kp}: {kp}\n" for n in names)
        (root / f"fasion-resize-annotation-{split}.csv").write_text("name:keypoints_y:keypoints_x\n" + rows)
        (root / f"{split}.lst").write_text("".join(n + "\n" for n in names))
    return root


def write_generated(
    out: Path, root: Path, size: tuple[int, int], seed: int = 1, method: str = "fake"
) -> list[str]:
    """One PNG per test pair: the GT target resized plus noise (so metrics are neither perfect nor random)."""
    from bench.data.deepfashion import pair_id, read_pairs

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids = []
    for src, tgt in read_pairs(root / "fasion-resize-pairs-test.csv"):
        gt = Image.open(root / "test_highres" / tgt).convert("RGB").resize((size[1], size[0]), Image.BICUBIC)
        noisy = np.asarray(gt).astype(np.int16) + rng.integers(-40, 41, (size[0], size[1], 3))
        pid = pair_id(src, tgt)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(out / f"{pid}.png")
        ids.append(pid)
    (out / "manifest.json").write_text(json.dumps({"method": method, "settings": {}}))
    return ids


class PoolFeatures(torch.nn.Module):
    """A 12-d stand-in for Inception (2x2 average pool of each channel): engine tests run in seconds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x.float(), (2, 2)).flatten(1)


def evaluate_root(root: Path, images: Path, protocol: str, tmp: Path, **kw) -> tuple[dict, list]:  # noqa: ANN003
    """``engine.evaluate`` of ``images`` against ``root``'s test pairs with test-friendly options."""
    from bench.data.deepfashion import DeepFashionDataset
    from bench.metrics.engine import EvalOptions, evaluate
    from bench.metrics.protocols import get_protocol

    ds = DeepFashionDataset(root, "test")
    kw.setdefault("cache_dir", tmp / "cache")
    kw.setdefault("bootstrap", 20)
    proto = kw.pop("protocol_obj", None) or get_protocol(protocol)
    opts = EvalOptions(allow_unverified_weights=True, progress=False, **kw)
    return evaluate(proto, images, ds.pairs, ds.images_dir, root, opts)
