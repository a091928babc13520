"""What the CPU path of `pgpis evaluate` gains from three choices (issue 13, CPU throughput).

On synthetic 256x176 PNGs (smooth random pixels) and random-weight networks in the real formats,
each measured in this one process, alternately, best of --repeats rounds:

  decode    Inception (``incv3tv``, batches of 8) over batches of 16 images: the images decoded
            (a) before the run (the networks alone), (b) by 2 threads that decode the next batches
            while the networks run (``streaming.prefetch_batches``' GPU path, the former CPU path),
            (c) by the same 2 threads between network calls (its CPU path); each variant in its own
            process, alternated;
  filters   the SSIM filters (``ssim._ndimage_valid``) of 8 pairs (5 maps x 3 channels each), the
            uniform 51 and the Gaussian 1.5 window, with torch's thread count 1 and its default;
  lpips     LPIPS alex on 8 pairs, default layout and channels_last (the largest relative
            difference of the values is printed too).

    .venv/bin/python benchmarks/decode_overlap.py [--repeats 3] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from machine import cpu_name


def _best(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitives
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def decode_variant(variant: str, files: list[Path], rounds: int) -> float:
    """ms per image of Inception over ``rounds`` batches of 16 decoded images, in this process."""
    import torch

    from bench.metrics import extractors, preprocess, weights
    from bench.metrics.streaming import prefetch_batches

    inc = extractors.build("incv3tv", weights.checkpoints_dir() / weights.WEIGHTS["inception_v3_tv"].filename)

    def load(i: int) -> torch.Tensor:
        return preprocess.to_chw(preprocess.decode(files[i], generated=True))

    n = 16 * rounds
    # "meta" takes prefetch_batches' accelerator path (decode ahead; pinning is for CUDA only).
    device = torch.device("meta" if variant == "beside" else "cpu")
    with torch.inference_mode():
        inc(torch.rand(8, 3, 256, 176))  # warm-up
        if variant == "alone":
            decoded = torch.stack([load(i) for i in range(16)])
            batches = (decoded for _ in range(rounds))
        else:
            batches = prefetch_batches(n, load, torch.stack, 16, 2, 2, device)
        t = time.perf_counter()
        for b in batches:
            inc(b[:8].float() / 255)
            inc(b[8:].float() / 255)
        return 1000 * (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="rounds per variant; the best is kept (default 3)")
    ap.add_argument(
        "--rounds", type=int, default=20, help="batches of 16 images per decode round (default 20)"
    )
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)  # a child: one decode variant
    ap.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="pgpis-decode-overlap-"))
    os.environ["TORCH_HOME"] = str(work / "torch")
    n_files = 16 * args.rounds
    files = [work / f"{i:05d}.png" for i in range(n_files)]
    if args.variant:
        print(json.dumps(decode_variant(args.variant, files, args.rounds)))
        return
    import torch
    from eval_throughput import SIZE, _smooth, write_random_weights
    from PIL import Image

    from bench.metrics import ssim, weights
    from bench.metrics.lpips_metric import Lpips

    write_random_weights(work / "torch")
    rng = np.random.default_rng(0)
    for f in files:
        Image.fromarray(_smooth(rng, SIZE)).save(f)

    images = n_files
    decode_ms: dict[str, float] = {}
    for _ in range(args.repeats):  # alternated, so a change of load hits every variant alike
        for name in ("alone", "beside", "between"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--variant",
                    name,
                    "--work",
                    str(work),
                    "--rounds",
                    str(args.rounds),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            decode_ms[name] = min(decode_ms.get(name, float("inf")), float(out.strip().splitlines()[-1]))

    with torch.inference_mode():
        g = torch.from_numpy(rng.random((8, 3, *SIZE), dtype=np.float32))
        t = torch.from_numpy(rng.random((8, 3, *SIZE), dtype=np.float32))
        maps = torch.cat([g.reshape(-1, *SIZE), t.reshape(-1, *SIZE)] * 2 + [(g * t).reshape(-1, *SIZE)])
        threads = torch.get_num_threads()
        filter_ms = {}
        for n in (1, threads):
            torch.set_num_threads(n)
            for win, sigma in ((51, None), (11, 1.5)):
                filter_ms[(n, win)] = (
                    1000 * _best(partial(ssim._ndimage_valid, maps, win, sigma), args.repeats) / 8
                )
        torch.set_num_threads(threads)

        lp = Lpips("alex", weights.checkpoints_dir() / weights.WEIGHTS["alexnet"].filename)
        a, b = 2 * g - 1, 2 * t - 1
        cl = 1000 * _best(lambda: lp(a, b), args.repeats) / 8
        v_cl = lp(a, b)
        lp.to(memory_format=torch.contiguous_format)
        plain = lp.model  # the lpips module with default-layout weights, fed default-layout inputs
        default = 1000 * _best(lambda: plain(a, b), args.repeats) / 8
        v_default = plain(a, b).reshape(-1).double()
        rel = float(((v_cl - v_default).abs() / v_default.abs()).max())

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {threads}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"decode + Inception, ms per image over {images} images (best of {args.repeats}):")
    for name, label in (
        ("alone", "networks alone (images decoded before)"),
        ("beside", "2 threads decode the next batches while the networks run"),
        ("between", "2 threads decode each batch between network calls"),
    ):
        print(f"  {label:<58} {decode_ms[name]:6.1f}  ({decode_ms[name] / decode_ms['alone']:.2f}x)")
    print("SSIM filters of 8 pairs (5 maps x 3 channels), ms per pair:")
    for win in (51, 11):
        one, many = filter_ms[(1, win)], filter_ms[(threads, win)]
        name = "uniform 51" if win == 51 else "Gaussian 1.5"
        print(f"  {name:<13} 1 thread {one:5.2f}, {threads} threads {many:5.2f} ({one / many:.2f}x faster)")
    print(
        f"LPIPS alex, ms per pair: default layout {default:.2f}, channels_last {cl:.2f} "
        f"({default / cl:.2f}x faster); largest relative difference of the values {rel:.1e}"
    )


if __name__ == "__main__":
    main()
