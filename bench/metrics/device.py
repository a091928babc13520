"""Where the metrics run: ``--device auto|cpu|cuda|cuda:N``, and exact arithmetic while scoring.

Every metric is plain torch code that runs on whichever device its tensors are on; the CPU and
the GPU take the same code path (tests run it with ``device="cpu"``). While scoring, TF32 and
reduced-precision reductions are switched off, so a GPU computes in true float32 (float64 where
a reference does) and agrees with the CPU within the parity tolerances.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from bench.errors import ConfigError

DEVICE_HELP = "auto (the GPU when there is one), cpu, cuda or cuda:N"


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """The torch device for ``spec``; a ConfigError when a GPU is asked for but not usable."""
    text = str(spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r}: not a device; use {DEVICE_HELP}") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(f"--device {spec!r}: only cpu and cuda are supported; use {DEVICE_HELP}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"--device {spec}: no CUDA device is visible to torch {torch.__version__} on this machine; "
            "use --device cpu (or auto)"
        )
    index = device.index or 0
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s) (0..."
            f"{torch.cuda.device_count() - 1})"
        )
    return torch.device("cuda", index)


def device_name(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what the result records."""
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return "cpu"


@contextlib.contextmanager
def exact_arithmetic() -> Iterator[None]:
    """No TF32 and no reduced-precision reductions inside the block (restored afterwards)."""
    matmul = torch.backends.cuda.matmul
    saved = (
        matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        matmul.allow_fp16_reduced_precision_reduction,
        matmul.allow_bf16_reduced_precision_reduction,
        torch.get_float32_matmul_precision(),
    )
    matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    matmul.allow_fp16_reduced_precision_reduction = False
    matmul.allow_bf16_reduced_precision_reduction = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        (
            matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            matmul.allow_fp16_reduced_precision_reduction,
            matmul.allow_bf16_reduced_precision_reduction,
        ) = saved[:4]
        torch.set_float32_matmul_precision(saved[4])


def chunk_size(device: torch.device, cpu: int, gpu: int) -> int:
    """Images per network call: small on the CPU (activation memory), large on a GPU (throughput)."""
    return cpu if device.type == "cpu" else gpu
