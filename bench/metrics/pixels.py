"""The per-image pixel metrics of a protocol (SSIM variants, PSNR, L1/MAE), on the device.

Each metric sees the eval views as the reference scripts feed them: uint8 images divided by
255 in float32 (``*_pad40`` variants: pasted into a white 256x256 canvas first). Images are
scored a few at a time on the CPU (the filtered maps of a whole batch would dominate peak RSS)
and many at a time on a GPU; every value is per image, so chunking never changes a number.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bench.metrics import preprocess
from bench.metrics.abs_error import l1, mae_sumnorm
from bench.metrics.device import chunk_size
from bench.metrics.protocols import Protocol
from bench.metrics.psnr import psnr
from bench.metrics.ssim import ssim_gauss_dr, ssim_w51

CPU_CHUNK = 4  # images per call on the CPU: the 5 filtered maps and temporaries, ~60 MB at 4
GPU_CHUNK = 128


def _metric(base: str, dtype: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The function of a pixel metric name (without ``_pad40``); ``dtype`` is the SSIM arithmetic."""
    table: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "ssim_w51": lambda t, g: ssim_w51(t, g, dtype=dtype),
        "ssim_g15_dr": lambda t, g: ssim_gauss_dr(t, g, 1.5, dtype=dtype),
        "ssim_g12_dr": lambda t, g: ssim_gauss_dr(t, g, 1.2, dtype=dtype),
        "psnr": lambda t, g: psnr(t, g, data_range=1.0),
        "l1": l1,
        "mae_sumnorm": mae_sumnorm,
    }
    try:
        return table[base]
    except KeyError:
        raise ValueError(f"unknown pixel metric {base!r}") from None


def pixel_metric_names(protocol: Protocol) -> tuple[str, ...]:
    return (*protocol.ssim, *protocol.psnr, *protocol.abs_error)


def score_pixels(
    protocol: Protocol, gen_u8: torch.Tensor, gt_u8: torch.Tensor, out: dict[str, np.ndarray], sl: slice
) -> None:
    """Every pixel metric of ``protocol`` for a batch of eval views; rows ``sl`` of ``out``."""
    step = chunk_size(gen_u8.device, CPU_CHUNK, GPU_CHUNK)
    for i in range(0, gen_u8.shape[0], step):
        j = min(i + step, gen_u8.shape[0])
        _score_chunk(protocol, gen_u8[i:j], gt_u8[i:j], out, slice(sl.start + i, sl.start + j))


def _score_chunk(
    protocol: Protocol, gen_u8: torch.Tensor, gt_u8: torch.Tensor, out: dict[str, np.ndarray], sl: slice
) -> None:
    g01, t01 = gen_u8.to(torch.float32) / 255.0, gt_u8.to(torch.float32) / 255.0
    padded: tuple[torch.Tensor, torch.Tensor] | None = None
    for name in pixel_metric_names(protocol):
        if name.endswith("_pad40"):
            if padded is None:
                padded = (
                    preprocess.pad40(gen_u8.to(torch.float32)) / 255.0,
                    preprocess.pad40(gt_u8.to(torch.float32)) / 255.0,
                )
            g, t = padded
        else:
            g, t = g01, t01
        out[name][sl] = _metric(name.removesuffix("_pad40"), protocol.ssim_dtype)(t, g).cpu().numpy()
