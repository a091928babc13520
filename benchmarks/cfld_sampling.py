"""Speed of CFLD sampling: paper config, random weights.

Measures, on this machine:
- seconds per ``uc_down_full`` sampling step = ONE batch-3 UNet call at the 64x64 latent plus the
  guidance mix and the DDPM update (``CFLDPipeline.denoise_step``);
- seconds for the non-UNet parts, once per image: Swin + HGA appearance encoder + decoder prompt
  (``encode_appearance``) and the pose adapter (``encode_pose``), batch 1;
in fp32 and under bf16 autocast (CPU), or fp16/bf16 autocast (GPU). With a GPU it also reports
images/s of the whole pipeline (encoders + N steps + SD-VAE decode) at 50 and 20 DDPM steps.

The official implementation takes 18.0 s per step and 3.35 s for the non-UNet parts on the 2-core
CPU of ../shared/reference/cfld-parity/README.md; the target is at most half in fp32. Seconds from
another CPU do not transfer, so on CPU the script also times the official implementation's work on
this machine (the same weights with the official attention maths: official_attention.py, and the
UNet in the default memory layout) and prints our time as a ratio of it. It also times the UNet
workload that ../shared/reference/environment.md gives for the project CPU, to relate the two CPUs.

Where the time goes: one step is 2.02 TFLOP (torch.utils.flop_counter: 1.33 convolution, 0.69
linear) plus the attention; a CPU that multiplies fp32 matrices at P GFLOPS cannot go below
2020/P seconds per step. The script measures P (a 4096x4096 sgemm) and prints that floor.

Usage: python benchmarks/cfld_sampling.py [--repeats 3] [--device cpu|cuda] [--dtypes fp32]
       [--no-official] [--no-calibrate] [--out result.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from typing import Any

import torch
from machine import cpu_name
from official_attention import official_attention_maths


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


def bench_parts(
    model: Any, codec: Any, dtype: str, repeats: int, device: torch.device, official: bool = False
) -> dict[str, Any]:
    """Median seconds of the non-UNet parts and of one step. ``official``: the same weights run the
    official code's work instead of ours: explicit softmax(QK^T)V attention (official_attention.py)
    and the UNet in the default contiguous memory layout."""
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings

    pipe = CFLDPipeline(model, codec, SamplingSettings(dtype=dtype))
    if official:
        model.unet.to(memory_format=torch.contiguous_format)
    maths = official_attention_maths() if official else contextlib.nullcontext()
    with maths:
        return _time_parts(pipe, model, dtype, repeats, device) | {
            "maths": "official" if official else "ours"
        }


def _time_parts(pipe: Any, model: Any, dtype: str, repeats: int, device: torch.device) -> dict[str, Any]:
    from methods.cfld.guidance import batch_conditions
    from methods.cfld.schedulers import fresh_copy

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


def calibrate_unet(model: Any, repeats: int, device: torch.device) -> float:
    """Median seconds of the workload environment.md times on the project CPU (0.97 s): the SD-1.5
    UNet forward at latent 4x32x22, batch 1, fp32, default layout and SDPA, 77 text tokens."""
    unet = model.unet.to(memory_format=torch.contiguous_format)
    x = torch.randn(1, 4, 32, 22, device=device)
    t = torch.tensor([500], device=device)
    ctx = torch.randn(1, 77, 768, device=device)
    with torch.inference_mode():
        run = lambda: unet(x, t, encoder_hidden_states=ctx)  # noqa: E731
        run()
        return statistics.median(_timed(run, repeats, device))


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
    ap.add_argument(
        "--no-official",
        dest="official",
        action="store_false",
        help="skip the reference leg: the same weights with the official code's attention maths (CPU)",
    )
    ap.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip timing the UNet workload of ../shared/reference/environment.md (CPU)",
    )
    ap.add_argument("--out", default=None, help="also write the results as JSON (atomically)")
    args = ap.parse_args()
    device = torch.device(args.device)

    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_name()}, {torch.get_num_threads()} torch threads"
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

    def show(r: dict[str, Any]) -> None:
        print(
            f"[{r['dtype']}, {r['maths']} maths] uc_down_full step (1 UNet call, batch 3, 64x64 latent): "
            f"{r['step_s']:.2f} s (median of {args.repeats}: {', '.join(f'{x:.2f}' for x in r['step_all_s'])}); "
            f"non-UNet parts per image: {r['non_unet_s']:.2f} s "
            f"({', '.join(f'{x:.2f}' for x in r['non_unet_all_s'])})",
            flush=True,
        )

    for dtype in dtypes:
        results["parts"].append(bench_parts(model, codec, dtype, args.repeats, device))
        show(results["parts"][-1])
    if args.official and device.type == "cpu":
        ref = bench_parts(model, codec, "fp32", args.repeats, device, official=True)
        results["official_fp32"] = ref
        show(ref)
        ours = next((r for r in results["parts"] if r["dtype"] == "fp32"), None)
        if ours is not None:
            results["ratio_to_official"] = {
                "step": ours["step_s"] / ref["step_s"],
                "non_unet": ours["non_unet_s"] / ref["non_unet_s"],
            }
            print(
                f"ours / official on this machine, fp32: step {ours['step_s'] / ref['step_s']:.2f}, "
                f"non-UNet {ours['non_unet_s'] / ref['non_unet_s']:.2f} (target <= 0.50 each)"
            )
    if args.calibrate and device.type == "cpu":
        cal = calibrate_unet(model, args.repeats, device)
        results["calibration_unet_32x22_s"] = cal
        print(
            f"calibration: SD-1.5 UNet forward, latent 4x32x22, batch 1, fp32: {cal:.2f} s here, 0.97 s on "
            f"the CPU of ../shared/reference/environment.md -> this machine is {cal / 0.97:.2f}x slower"
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
        "published reference (official code on the parity README's 2-core CPU): 18.0 s per step, "
        "3.35 s non-UNet, i.e. target <= 9.0 s and <= 1.68 s in fp32 on that CPU; on another CPU "
        "compare the ratios to the official maths measured above"
    )
    if args.out:
        from bench.io import write_json_atomic

        write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
