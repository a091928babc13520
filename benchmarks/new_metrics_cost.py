"""Cost of the issue-16 metrics on this machine: KID, PRDC, and the DINOv2 ViT-L/14 forward.

Measured in one process, in this order, each once after the inputs exist:

  prdc    bench.metrics.prdc.prdc (k=5) on two random float32 feature sets (n x d, default
          8,570 x 2,048, the DeepFashion test set on Inception pool features), default blocks;
  kid     bench.metrics.kid.kid on the same two sets, torch-fidelity's defaults
          (100 subsets of 1,000); with --reference also torch-fidelity's kid_features_to_metric;
  dinov2  DinoV2Features (real ViT-L/14 size: width 1024, depth 24, 518-px position grid, random
          weights saved to a temporary file in the official format) on a batch of --batch images
          at 224x224: one warm-up pass, then --runs timed passes; per-image seconds;
  incv3   the existing FID extractor ptincv3 (pytorch-fid Inception, random weights) on the same
          number of 256x176 images in [0, 1], same warm-up and runs: the ratio DINOv2 / Inception
          per image is the added network cost of FD-DINOv2 per image.

Peak RSS is read after each phase (ru_maxrss is a high-water mark: a phase's growth is an upper
bound of its own peak over what came before). The machine may be shared: numbers are one run.

    .venv/bin/python benchmarks/new_metrics_cost.py
    .venv/bin/python benchmarks/new_metrics_cost.py --n 2000 --reference
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, arg, runs: int) -> float:
    """Seconds per call of ``fn(arg)`` over ``runs`` calls after one untimed warm-up call."""
    fn(arg)
    t0 = time.perf_counter()
    for _ in range(runs):
        fn(arg)
    return (time.perf_counter() - t0) / runs


def bench_set_metrics(n: int, d: int, reference: bool) -> dict:
    from bench.metrics.kid import kid
    from bench.metrics.prdc import prdc

    rng = np.random.default_rng(0)
    # non-negative like pool features; the fake set slightly wider, so the metrics are not degenerate
    real = np.abs(rng.standard_normal((n, d), dtype=np.float32))
    fake = np.abs(rng.standard_normal((n, d), dtype=np.float32) * 1.02)
    out: dict = {"features": f"2 x {n} x {d} float32, random"}
    out["rss_features_mb"] = _rss_mb()
    t0 = time.perf_counter()
    pr = prdc(real, fake)
    out["prdc_s"] = time.perf_counter() - t0
    out["prdc"] = {k: getattr(pr, k) for k in ("precision", "recall", "density", "coverage")}
    out["rss_after_prdc_mb"] = _rss_mb()
    t0 = time.perf_counter()
    res = kid(real, fake)
    out["kid_s"] = time.perf_counter() - t0
    out["kid"] = {"mean": res.mean, "std": res.std, "subsets": res.subsets, "subset_size": res.subset_size}
    out["rss_after_kid_mb"] = _rss_mb()
    if reference:
        from torch_fidelity.metric_kid import kid_features_to_metric

        t0 = time.perf_counter()
        ref = kid_features_to_metric(torch.from_numpy(real), torch.from_numpy(fake), verbose=False)
        out["kid_torch_fidelity_s"] = time.perf_counter() - t0
        out["kid_torch_fidelity"] = ref
    return out


def bench_networks(batch: int, runs: int) -> dict:
    from bench.metrics.dinov2 import DinoV2Features, DinoViT
    from bench.metrics.inception import PtInceptionV3, fid_inception_skeleton

    out: dict = {"batch": batch, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        vit = DinoViT(dim=1024, depth=24, mlp_hidden=4096, pos_grid=37)  # ViT-L/14 as torch hub builds it
        for name, p in vit.named_parameters():  # ViT-like scales: unit LayerNorms, small LayerScale
            if ".norm" in name or name.startswith("norm."):
                torch.nn.init.constant_(p, 1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("gamma"):
                torch.nn.init.constant_(p, 0.1)
            else:
                torch.nn.init.normal_(p, std=0.02)
        path = Path(tmp) / "dinov2_vitl14_pretrain.pth"
        torch.save({k: v for k, v in vit.state_dict().items()}, path)
        del vit
        dino = DinoV2Features(path)
        out["dinov2_params_m"] = sum(p.numel() for p in dino.parameters()) / 1e6
        x = torch.rand(batch, 3, 224, 224)
        out["dinov2_s_per_image"] = _timed(dino, x, runs) / batch
        out["rss_after_dinov2_mb"] = _rss_mb()
        del dino
        inc_path = Path(tmp) / "pt_inception.pth"
        torch.save(fid_inception_skeleton().state_dict(), inc_path)
        inc = PtInceptionV3(inc_path)
        y = torch.rand(batch, 3, 256, 176)
        out["incv3_s_per_image"] = _timed(inc, y, runs) / batch
    out["dinov2_over_incv3"] = out["dinov2_s_per_image"] / out["incv3_s_per_image"]
    from bench.metrics.dinov2 import dgm_eval_view

    img = np.random.default_rng(0).integers(0, 256, (256, 176, 3), dtype=np.uint8)
    out["dgm_eval_view_s_per_image"] = _timed(dgm_eval_view, img, 50)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8570, help="images per feature set (default: 8,570)")
    ap.add_argument("--dims", type=int, default=2048, help="feature dimension (default: 2,048)")
    ap.add_argument("--batch", type=int, default=8, help="images per network pass (default: 8)")
    ap.add_argument("--runs", type=int, default=1, help="timed passes after one warm-up (default: 1)")
    ap.add_argument(
        "--reference", action="store_true", help="also time torch-fidelity's KID on the same features"
    )
    ap.add_argument("--skip-networks", action="store_true")
    ap.add_argument("--skip-sets", action="store_true")
    args = ap.parse_args()
    report: dict = {
        "machine": {
            "cpu": cpu_name(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "rss_start_mb": _rss_mb(),
    }
    if not args.skip_sets:
        report["set_metrics"] = bench_set_metrics(args.n, args.dims, args.reference)
    if not args.skip_networks:
        report["networks"] = bench_networks(args.batch, args.runs)
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
