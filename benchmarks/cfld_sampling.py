"""Speed of CFLD sampling: paper config, random weights.

Measures, on this machine:
- seconds per ``uc_down_full`` sampling step = ONE batch-3 UNet call at the 64x64 latent plus the
  guidance mix and the DDPM update (``CFLDPipeline.denoise_step``);
- seconds for the non-UNet parts, once per image: Swin + HGA appearance encoder + decoder prompt
  (``encode_appearance``) and the pose adapter (``encode_pose``), batch 1;
in fp32 and under bf16 autocast (CPU), or fp16/bf16 autocast (GPU). With a GPU it also reports
images/s of the whole pipeline (encoders + N steps + SD-VAE decode) at 50 and 20 DDPM steps.

The official implementation takes 18.0 s per step and 3.35 s for the non-UNet parts on the 2-core
project CPU (../shared/reference/cfld-parity/README.md); the target is at most half in fp32.

Where the time goes: one step is 2.02 TFLOP (torch.utils.flop_counter: 1.33 convolution, 0.69
linear) plus the attention; a CPU that multiplies fp32 matrices at P GFLOPS cannot go below
2020/P seconds per step. The script measures P (a 4096x4096 sgemm) and prints that floor.

Usage: python benchmarks/cfld_sampling.py [--repeats 3] [--device cpu|cuda] [--dtypes fp32] [--out result.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

import torch


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(fn: Any, repeats: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return out


def build(device: torch.device) -> tuple[Any, Any]:
    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel
    from methods.cfld.pretrained import build_vae
    from methods.cfld.vae import SDLatentCodec

    torch.manual_seed(0)
    cfg = CFLDConfig.paper()
    model = CFLDModel(cfg).eval().requires_grad_(False).to(device)
    codec = SDLatentCodec(build_vae(cfg.vae.config).to(device), source="random")
    return model, codec


def bench_parts(model: Any, codec: Any, dtype: str, repeats: int, device: torch.device) -> dict[str, Any]:
    from methods.cfld.guidance import batch_conditions
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
    from methods.cfld.schedulers import fresh_copy

    pipe = CFLDPipeline(model, codec, SamplingSettings(dtype=dtype))
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 256, 256, generator=g).to(device)
    pose = torch.rand(1, 21, 256, 256, generator=g).to(device)
    with torch.inference_mode():
        enc = lambda: pipe.encode_conditions(img, pose)  # noqa: E731
        enc()  # warm-up (allocator, kernels)
        enc_times = _timed(enc, repeats, device)
        prompt, feats, hga = pipe.encode_conditions(img, pose)
        conds = batch_conditions("uc_down_full", prompt, model.learnable_vector, feats, hga)
        sched = fresh_copy(pipe.scheduler)
        sched.set_timesteps(50, device=device)
        latents = torch.randn(1, 4, 64, 64, generator=g).to(device)
        gens = [torch.Generator(device=device).manual_seed(1)]
        step = lambda: pipe.denoise_step(sched, latents, sched.timesteps[0], conds, gens)  # noqa: E731
        step()
        step_times = _timed(step, repeats, device)
    return {
        "dtype": dtype,
        "non_unet_s": statistics.median(enc_times),
        "non_unet_all_s": enc_times,
        "step_s": statistics.median(step_times),
        "step_all_s": step_times,
    }


def count_flops(model: Any, codec: Any, device: torch.device) -> dict[str, float]:
    """TFLOP of one uc_down_full step and GFLOP of the non-UNet parts (torch.utils.flop_counter;
    matmuls and convolutions, the attention kernel is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    from methods.cfld.guidance import batch_conditions
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
    from methods.cfld.schedulers import fresh_copy

    pipe = CFLDPipeline(model, codec, SamplingSettings())
    img = torch.rand(1, 3, 256, 256, device=device)
    pose = torch.rand(1, 21, 256, 256, device=device)
    with torch.no_grad():  # (the counter's module hooks do not work under inference_mode)
        enc = FlopCounterMode(display=False)
        with enc:
            prompt, feats, hga = pipe.encode_conditions(img, pose)
        conds = batch_conditions("uc_down_full", prompt, model.learnable_vector, feats, hga)
        sched = fresh_copy(pipe.scheduler)
        sched.set_timesteps(50, device=device)
        latents = torch.randn(1, 4, 64, 64, device=device)
        step = FlopCounterMode(display=False)
        with step:
            pipe.denoise_step(sched, latents, sched.timesteps[0], conds, None)
    return {"step_tflop": step.get_total_flops() / 1e12, "non_unet_gflop": enc.get_total_flops() / 1e9}


def sgemm_gflops(device: torch.device) -> float:
    """This machine's fp32 matrix-multiply rate: the best of 3 4096x4096 products."""
    a = torch.randn(4096, 4096, device=device)
    b = torch.randn(4096, 4096, device=device)
    a @ b
    best = min(_timed(lambda: a @ b, 3, device))
    return 2 * 4096**3 / best / 1e9


def bench_images_per_s(
    model: Any, codec: Any, dtype: str, steps: int, batch: int, device: torch.device
) -> float:
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings

    pipe = CFLDPipeline(model, codec, SamplingSettings(dtype=dtype, num_inference_steps=steps))
    img = torch.rand(batch, 3, 256, 256, device=device)
    pose = torch.rand(batch, 21, 256, 256, device=device)
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(batch)]
    with torch.inference_mode():
        pipe(img[:1], pose[:1], gens[:1])  # warm-up
        (t,) = _timed(lambda: pipe(img, pose, gens), 1, device)
    return batch / t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--gpu-batch", type=int, default=16)
    ap.add_argument(
        "--dtypes",
        default=None,
        help="comma-separated autocast dtypes to measure (default: fp32,bf16 on CPU, fp16,bf16 on GPU)",
    )
    ap.add_argument("--out", default=None, help="also write the results as JSON (atomically)")
    args = ap.parse_args()
    device = torch.device(args.device)

    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{_cpu_name()}, {torch.get_num_threads()} torch threads"
    )
    print(f"CFLD sampling benchmark: paper config, random weights, torch {torch.__version__}, on {where}")
    # A shared machine's load changes CPU timings several-fold: print it with the numbers.
    print(f"load average at start (1/5/15 min): {os.getloadavg()}, {os.cpu_count()} CPUs")
    t = time.perf_counter()
    model, codec = build(device)
    print(f"built the paper-config model in {time.perf_counter() - t:.1f} s")
    flops = count_flops(model, codec, device)
    peak = sgemm_gflops(device)
    print(
        f"work: {flops['step_tflop']:.2f} TFLOP per step, {flops['non_unet_gflop']:.0f} GFLOP non-UNet "
        f"(matmul+conv); this machine's fp32 sgemm: {peak:.0f} GFLOPS -> floor "
        f"{flops['step_tflop'] * 1e3 / peak:.1f} s per step, {flops['non_unet_gflop'] / peak:.2f} s non-UNet"
    )
    dtypes = ["fp32", "bf16"] if device.type == "cpu" else ["fp16", "bf16"]
    if args.dtypes:
        dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    results: dict[str, Any] = {
        "device": where,
        "torch": torch.__version__,
        "repeats": args.repeats,
        "parts": [],
        "flops": flops,
        "sgemm_gflops": peak,
    }
    for dtype in dtypes:
        r = bench_parts(model, codec, dtype, args.repeats, device)
        results["parts"].append(r)
        print(
            f"[{dtype}] uc_down_full step (1 UNet call, batch 3, 64x64 latent): {r['step_s']:.2f} s "
            f"(median of {args.repeats}: {', '.join(f'{x:.2f}' for x in r['step_all_s'])}); "
            f"non-UNet parts per image: {r['non_unet_s']:.2f} s"
        )
    if device.type == "cuda":
        results["images_per_s"] = {}
        for dtype in dtypes:
            for steps in (50, 20):
                ips = bench_images_per_s(model, codec, dtype, steps, args.gpu_batch, device)
                results["images_per_s"][f"{dtype}_{steps}steps"] = ips
                print(f"[{dtype}] {steps} DDPM steps, batch {args.gpu_batch}: {ips:.2f} images/s")
    results["loadavg_end"] = os.getloadavg()
    print(f"load average at end (1/5/15 min): {results['loadavg_end']}")
    print(
        "reference (official code, 2-core project CPU): 18.0 s per step, 3.35 s non-UNet; "
        "target <= 9.0 s and <= 1.68 s in fp32"
    )
    if args.out:
        from bench.io import write_json_atomic

        write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
