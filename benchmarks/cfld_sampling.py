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
UNet in the default memory layout), alternating with ours repeat by repeat so that both legs see the
same machine load, and prints our time as a ratio of it. It also times the UNet workload that
../shared/reference/environment.md gives for the project CPU, to relate the two CPUs.

Where the time goes: one step is 2.39 TFLOP: convolutions 1.33, linear layers 0.69 and the
attention's QK^T and PV matmuls 0.37 (torch.utils.flop_counter; its SDPA formula is applied to the
CPU attention kernel here, which torch does not do by itself). A CPU that multiplies fp32 matrices
at P GFLOPS needs about TFLOP*1000/P seconds per step with direct convolutions. The script
measures P (a 4096x4096 sgemm), prints that floor and, next to the official timing, the floor's
ratio to it: about the best ratio a direct implementation of the same network can reach here.
Ours runs the wide 3x3 convolutions as Winograd F(4x4,3x3) on CPU fp32 (methods/cfld/winograd.py),
which needs fewer multiply-adds; the script prints what ours executes too.

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


class _Workload:
    """The timed calls on fixed random inputs: ``encode`` (the non-UNet parts, batch 1) and ``step``
    (one uc_down_full denoising step: one batch-3 UNet call, the guidance mix, the DDPM update)."""

    def __init__(self, model: Any, codec: Any, dtype: str, device: torch.device) -> None:
        from methods.cfld.guidance import batch_conditions
        from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
        from methods.cfld.schedulers import fresh_copy

        self.model = model
        self.pipe = CFLDPipeline(model, codec, SamplingSettings(dtype=dtype), optimize_model=True)
        g = torch.Generator().manual_seed(0)
        self.img = torch.rand(1, 3, 256, 256, generator=g).to(device)
        self.pose = torch.rand(1, 21, 256, 256, generator=g).to(device)
        with torch.inference_mode():
            prompt, feats, hga = self.pipe.encode_conditions(self.img, self.pose)
            self.conds = batch_conditions("uc_down_full", prompt, model.learnable_vector, feats, hga)
        self.sched = fresh_copy(self.pipe.scheduler)
        self.sched.set_timesteps(50, device=device)
        self.latents = torch.randn(1, 4, 64, 64, generator=g).to(device)
        self.gens = [torch.Generator(device=device).manual_seed(1)]

    def encode(self) -> None:
        with torch.inference_mode():
            self.pipe.encode_conditions(self.img, self.pose)

    def step(self) -> None:
        with torch.inference_mode():
            self.pipe.denoise_step(self.sched, self.latents, self.sched.timesteps[0], self.conds, self.gens)

    @contextlib.contextmanager
    def as_official(self) -> Any:
        """The same weights doing the official code's work: explicit softmax(QK^T)V attention
        (official_attention.py), torch's direct convolutions and the UNet in the default
        contiguous memory layout."""
        parts = self.pipe.module_parts()
        with default_layout(self.model.unet), direct_convolutions(*parts), official_attention_maths():
            yield


@contextlib.contextmanager
def default_layout(module: torch.nn.Module) -> Any:
    """``module`` in the default contiguous memory layout within the block; afterwards it gets back
    the very tensors it had (laying them out again would make new tensors, and ours would then
    transform its Winograd filters again inside a timed call)."""
    ours = [(p, p.data) for p in module.parameters()]
    module.to(memory_format=torch.contiguous_format)
    try:
        yield
    finally:
        for p, data in ours:
            p.data = data


@contextlib.contextmanager
def direct_convolutions(*modules: torch.nn.Module) -> Any:
    """Within the block the modules use torch's direct 3x3 convolutions (CFLDPipeline switches
    the wide ones to Winograd on CPU fp32: methods/cfld/winograd.py); their cached filters stay."""
    from methods.cfld import winograd

    switched = [m for m in modules if winograd.disable(m, keep_filters=True)]
    try:
        yield
    finally:
        for m in switched:
            winograd.enable(m)


def _summary(dtype: str, maths: str, enc: list[float], step: list[float]) -> dict[str, Any]:
    return {
        "dtype": dtype,
        "maths": maths,
        "non_unet_s": statistics.median(enc),
        "non_unet_all_s": enc,
        "step_s": statistics.median(step),
        "step_all_s": step,
    }


def bench_parts(model: Any, codec: Any, dtype: str, repeats: int, device: torch.device) -> dict[str, Any]:
    """Median seconds of the non-UNet parts and of one step, our implementation."""
    work = _Workload(model, codec, dtype, device)
    work.encode(), work.step()  # warm-up (allocator, kernels)
    return _summary(dtype, "ours", _timed(work.encode, repeats, device), _timed(work.step, repeats, device))


def bench_ours_vs_official(
    model: Any, codec: Any, repeats: int, device: torch.device
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """fp32, ours and the official work ALTERNATED repeat by repeat, so that both legs see the same
    machine: on a shared VM the speed drifts by tens of percent within minutes (measured here:
    15.9 then 17.4 s per step for ours, 24.9 then 31.1 s for the official maths, in two runs
    half an hour apart). The ratio is the median of the per-repeat ratios."""
    work = _Workload(model, codec, "fp32", device)
    times: dict[str, dict[str, list[float]]] = {m: {"enc": [], "step": []} for m in ("ours", "official")}

    def one(maths: str, record: bool) -> None:
        with work.as_official() if maths == "official" else contextlib.nullcontext():
            for part, fn in (("enc", work.encode), ("step", work.step)):
                t = _timed(fn, 1, device)
                if record:
                    times[maths][part] += t

    one("ours", record=False), one("official", record=False)  # warm-up of both
    for _ in range(repeats):
        one("ours", record=True)
        one("official", record=True)
    ours = _summary("fp32", "ours", times["ours"]["enc"], times["ours"]["step"])
    official = _summary("fp32", "official", times["official"]["enc"], times["official"]["step"])
    ratio = {
        key: statistics.median(
            a / b for a, b in zip(times["ours"][part], times["official"][part], strict=True)
        )
        for key, part in (("step", "step"), ("non_unet", "enc"))
    }
    return ours, official, ratio


def _attention_counted() -> dict[Any, Any]:
    """torch's flop counter knows the GPU attention kernels but not the CPU one that SDPA runs
    here; count it with torch's own SDPA formula (2 batched matmuls: QK^T and PV)."""
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    return {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}


def _attention_share(counter: Any) -> float:
    counts = counter.get_flop_counts().get("Global", {})
    return sum(v for k, v in counts.items() if "scaled_dot_product" in str(k))


def count_flops(model: Any, codec: Any, device: torch.device) -> dict[str, float]:
    """TFLOP of one uc_down_full step and GFLOP of the non-UNet parts (torch.utils.flop_counter:
    matmuls, convolutions and the attention's two matmuls), and the attention's part of each;
    the very calls :class:`_Workload` times. The network's work is counted with direct
    convolutions (what the official code runs); ``*_executed`` counts the multiply-adds our
    Winograd path actually performs (its transforms and batched products are matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    work = _Workload(model, codec, "fp32", device)
    pipe = work.pipe

    def counted() -> tuple[Any, Any]:
        # grad mode on would send every convolution down the direct path; no_grad keeps ours
        # (and the counter's module hooks do not work under inference_mode)
        with torch.no_grad():
            enc = FlopCounterMode(display=False, custom_mapping=_attention_counted())
            with enc:
                pipe.encode_conditions(work.img, work.pose)
            step = FlopCounterMode(display=False, custom_mapping=_attention_counted())
            with step:
                pipe.denoise_step(work.sched, work.latents, work.sched.timesteps[0], work.conds, work.gens)
        return enc, step

    executed_enc, executed_step = counted()
    with direct_convolutions(*pipe.module_parts()):
        enc, step = counted()
    return {
        "step_tflop": step.get_total_flops() / 1e12,
        "step_attention_tflop": _attention_share(step) / 1e12,
        "non_unet_gflop": enc.get_total_flops() / 1e9,
        "non_unet_attention_gflop": _attention_share(enc) / 1e9,
        "step_tflop_executed": executed_step.get_total_flops() / 1e12,
        "non_unet_gflop_executed": executed_enc.get_total_flops() / 1e9,
    }


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
    unet = model.unet
    x = torch.randn(1, 4, 32, 22, device=device)
    t = torch.tensor([500], device=device)
    ctx = torch.randn(1, 77, 768, device=device)
    # The reference workload: default layout, torch's direct convolutions.
    with default_layout(unet), direct_convolutions(unet), torch.inference_mode():
        run = lambda: unet(x, t, encoder_hidden_states=ctx)  # noqa: E731
        run()
        return statistics.median(_timed(run, repeats, device))


def bench_images_per_s(
    model: Any, codec: Any, dtype: str, steps: int, batch: int, device: torch.device
) -> float:
    """Images per second of the whole pipeline (encoders, ``steps`` DDPM steps, decode) at ``batch``
    pairs, inputs at the model's condition and pose sizes (GPU numbers; tested on CPU with a micro
    model so that this GPU-only path cannot rot unseen)."""
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings

    cfg = model.config
    pipe = CFLDPipeline(
        model,
        codec,
        SamplingSettings(dtype=dtype, num_inference_steps=steps, diffusion_size=tuple(cfg.gt_img_size)),
        optimize_model=True,
    )
    img = torch.rand(batch, 3, *cfg.swin.img_size, device=device)
    pose = torch.rand(batch, 21, *cfg.pose.img_size, device=device)
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
    floor_step, floor_enc = flops["step_tflop"] * 1e3 / peak, flops["non_unet_gflop"] / peak
    print(
        f"work: {flops['step_tflop']:.2f} TFLOP per step ({flops['step_attention_tflop']:.2f} of it in "
        f"attention), {flops['non_unet_gflop']:.0f} GFLOP non-UNet ({flops['non_unet_attention_gflop']:.0f} "
        f"attention), with direct convolutions; matmuls, convolutions and attention matmuls counted; this "
        f"machine's fp32 sgemm: {peak:.0f} GFLOPS -> direct-convolution floor {floor_step:.1f} s per step, "
        f"{floor_enc:.2f} s non-UNet"
    )
    print(
        f"executed by ours (wide 3x3 convolutions as Winograd F(4x4,3x3)): {flops['step_tflop_executed']:.2f} "
        f"TFLOP per step, {flops['non_unet_gflop_executed']:.0f} GFLOP non-UNet"
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

    interleave = args.official and device.type == "cpu"
    for dtype in dtypes:
        if interleave and dtype == "fp32":
            ours, ref, ratio = bench_ours_vs_official(model, codec, args.repeats, device)
            results["parts"].append(ours)
            results["official_fp32"] = ref
            results["ratio_to_official"] = ratio
            show(ours)
            show(ref)
            print(
                f"ours / official on this machine, fp32 (median of the {args.repeats} alternated "
                f"repeats' ratios): step {ratio['step']:.2f}, non-UNet {ratio['non_unet']:.2f} "
                "(target <= 0.50 each)"
            )
            # Half the official time can be out of reach of any direct implementation of the same
            # network: every multiply-add still has to run, at about the sgemm rate at best. Winograd
            # convolutions do fewer multiply-adds, which is how ours can get below this floor.
            results["floor_over_official"] = {
                "step": floor_step / ref["step_s"],
                "non_unet": floor_enc / ref["non_unet_s"],
            }
            print(
                f"the direct-convolution FLOP floor above / official on this machine: step "
                f"{floor_step / ref['step_s']:.2f}, non-UNet {floor_enc / ref['non_unet_s']:.2f} (the best ratio "
                "a direct implementation of the same network reaches if every multiply-add ran at the "
                "sgemm rate)"
            )
        else:
            results["parts"].append(bench_parts(model, codec, dtype, args.repeats, device))
            show(results["parts"][-1])
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
