"""benchmarks/cfld_sampling.py: the FLOP count includes the CPU attention kernel; the GPU-only
images/s leg runs (on CPU, micro model)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(_DIR))  # cfld_sampling imports its sibling modules by name
    try:
        spec = importlib.util.spec_from_file_location(name, _DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(_DIR))


def test_cpu_attention_is_counted_as_two_matmuls() -> None:
    bench = _load("cfld_sampling")
    b, heads, n, m, d = 2, 3, 64, 16, 8
    q = torch.randn(b, heads, n, d)
    kv = torch.randn(b, heads, m, d)
    with torch.no_grad():
        plain = FlopCounterMode(display=False)
        with plain:
            F.scaled_dot_product_attention(q, kv, kv)
        counted = FlopCounterMode(display=False, custom_mapping=bench._attention_counted())
        with counted:
            F.scaled_dot_product_attention(q, kv, kv)
            torch.randn(5, 7) @ torch.randn(7, 4)  # other ops are still counted as before
    # QK^T and PV: 2 * (2 * b * heads * n * m * d) multiply-adds counted as 2 FLOPs each.
    attention = 4 * b * heads * n * m * d
    assert plain.get_total_flops() == 0  # what torch alone reports for the CPU kernel
    assert counted.get_total_flops() == attention + 2 * 5 * 7 * 4
    assert bench._attention_share(counted) == attention


def test_gpu_images_per_second_path_runs_on_a_micro_model() -> None:
    """The images/s leg runs only with a GPU in the benchmark; the same function on the CPU with a
    micro model keeps it working (inputs at the model's own sizes, the whole pipeline)."""
    from _cfld_micro import MICRO_MODEL

    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel
    from methods.cfld.vae import PixelCodec

    bench = _load("cfld_sampling")
    torch.manual_seed(0)
    model = CFLDModel(CFLDConfig.from_dict(MICRO_MODEL)).eval().requires_grad_(False)
    ips = bench.bench_images_per_s(model, PixelCodec(2), "fp32", steps=2, batch=2, device=torch.device("cpu"))
    assert 0 < ips < float("inf")


def test_official_leg_runs_direct_convolutions_and_gives_ours_back_untouched() -> None:
    """The official leg must not time our Winograd path, and switching back must not cost ours a
    filter re-transform inside its timed call (same tensors, same cached filters)."""
    from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
    from methods.cfld.vae import PixelCodec

    bench = _load("cfld_sampling")
    conv = torch.nn.Conv2d(256, 256, 3, padding=1)
    model = torch.nn.Sequential(conv)
    pipe = CFLDPipeline(model, PixelCodec(2), SamplingSettings(), optimize_model=True)  # as the benchmark's
    assert pipe.winograd_layers == 1
    model.to(memory_format=torch.channels_last)  # ours' layout (CFLDPipeline does it for the UNet)
    storage = conv.weight.data_ptr()
    x = torch.randn(1, 256, 8, 8)
    with torch.inference_mode():
        fast = conv(x)
        filters = conv.__dict__["_winograd_filters"]
        with bench.default_layout(model), bench.direct_convolutions(model):
            assert conv.weight.is_contiguous()  # the official code's default layout
            assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))
        assert conv.weight.data_ptr() == storage  # the very tensor: the cached filters' key holds
        assert torch.equal(conv(x), fast)
    assert conv.__dict__["_winograd_filters"] is filters
