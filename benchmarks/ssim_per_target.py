"""What SSIM's target side once per target and the finer filter split save on the CPU (issue 13).

On synthetic 256x176 images in [0, 1], the two SSIM variants of `cfld-256` (uniform 51, Gaussian
1.5 with the data range of each prediction), in chunks of ``pixels.CPU_CHUNK`` pairs as the engine
scores them, each chunk right after a torch operation (as in the engine, where a network or a product precedes
every filter call, and torch's OpenMP threads are still spinning):

  per pair     every pair filters its target anew (the code before: 5 maps per pair and variant);
  per target   each target's side (``ssim_target_maps``, 2 of the 5 maps) once, as the engine does
               with pairs grouped by target; DeepFashion's test set has 8,570 pairs on 3,144
               targets (2.73 per target): --pairs-per-target;
  split        the maps of one call cut into 2 (one per thread) or into 4 per thread (the default).

The process fixes glibc's malloc thresholds first, as the engine does on the CPU
(``bench/memory.py``; --default-allocator leaves glibc's defaults).
The variants alternate round by round in this one process; medians per pair are printed (this shared
machine's speed drifts, so compare within one run). Values are checked bit for bit between variants.

    .venv/bin/python benchmarks/ssim_per_target.py [--rounds 30] [--pairs-per-target 2.73]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from machine import cpu_name

from bench.memory import keep_freed_memory
from bench.metrics import ssim
from bench.metrics.pixels import CPU_CHUNK as CHUNK  # pairs per SSIM call, as the engine's
from bench.metrics.targets import TargetFeatures


def _targets(n_pairs: int, per_target: float) -> list[int]:
    """Target index of each pair: groups of 2 and 3 (or other sizes) averaging ``per_target``."""
    rng = np.random.default_rng(0)
    out: list[int] = []
    t = 0
    while len(out) < n_pairs:
        size = int(per_target) + (rng.random() < per_target - int(per_target))
        out += [t] * max(1, size)
        t += 1
    return out[:n_pairs]


def _score(gt: torch.Tensor, pred: torch.Tensor, tgt: list[str], cached: bool) -> torch.Tensor:
    values = []
    cache_w = TargetFeatures(ssim._w51_target)
    cache_g = TargetFeatures(lambda x: ssim._gauss_dr_target(x, 1.5))
    spin = torch.rand(64, 256, 176)
    for i in range(0, pred.shape[0], CHUNK):
        g, p, names = gt[i : i + CHUNK], pred[i : i + CHUNK], tgt[i : i + CHUNK]
        torch.mul(spin, 1.0)  # a torch op just before, as in the engine
        if not cached:
            values += [ssim.ssim_w51(g, p), ssim.ssim_gauss_dr(g, p, 1.5)]
            continue
        tw, tg = cache_w(g, names), cache_g(g, names)  # each target's side once, as the engine does
        values += [ssim.ssim_w51(g, p, target=tw), ssim.ssim_gauss_dr(g, p, 1.5, target=tg)]
    return torch.cat(values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--pairs-per-target", type=float, default=8570 / 3144)
    ap.add_argument(
        "--default-allocator", action="store_true", help="leave glibc's malloc thresholds as they are"
    )
    args = ap.parse_args()
    allocator = "glibc defaults" if args.default_allocator else f"fixed thresholds: {keep_freed_memory()}"

    tgt_index = _targets(args.pairs, args.pairs_per_target)
    tgt = [f"target{i}" for i in tgt_index]
    g = torch.Generator().manual_seed(0)
    images = torch.rand(max(tgt_index) + 1, 3, 256, 176, generator=g)
    gt = images[tgt_index].contiguous()
    pred = (gt + 0.3 * torch.rand(gt.shape, generator=g)).clamp(0, 1)

    variants = {
        "per pair, 2-way split": (False, 1),
        "per pair, 4 tasks per thread": (False, ssim.TASKS_PER_THREAD),
        "per target, 4 tasks per thread": (True, ssim.TASKS_PER_THREAD),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    results: dict[str, torch.Tensor] = {}
    default_tasks = ssim.TASKS_PER_THREAD
    try:
        for _ in range(args.rounds):
            for name, (cached, tasks) in variants.items():
                # 1 task per thread: the even split, one part per thread (the former code)
                ssim.TASKS_PER_THREAD = tasks
                t0 = time.perf_counter()
                results[name] = _score(gt, pred, tgt, cached)
                times[name].append((time.perf_counter() - t0) / args.pairs)
    finally:
        ssim.TASKS_PER_THREAD = default_tasks
    first = next(iter(results.values()))
    same = all(torch.equal(first.nan_to_num(-1), r.nan_to_num(-1)) for r in results.values())
    print(
        f"{cpu_name()}, torch threads {torch.get_num_threads()}; {args.pairs} pairs of 256x176 on "
        f"{max(tgt_index) + 1} targets ({args.pairs / (max(tgt_index) + 1):.2f} per target), ssim_w51 + ssim_g15_dr, "
        f"chunks of {CHUNK}, {args.rounds} rounds alternated, allocator {allocator}; values bit-identical across variants: {same}"
    )
    base = np.median(times["per pair, 2-way split"])
    for name, ts in times.items():
        med = np.median(ts)
        print(f"  {name:32s} {med * 1e3:6.2f} ms per pair (median)  {med / base:.2f}x")


if __name__ == "__main__":
    main()
