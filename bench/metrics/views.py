"""Image views a protocol feeds its per-pair pixel metrics: geometry is declared here, not in a name.

A view turns the uint8 eval images (B, 3, H, W) into the float [0, 1] tensors a metric sees. A
protocol says which view each metric reads (``protocols.MetricUse``); the result name is the
metric's name plus the view's suffix, so ``ssim_w51`` on the ``pad40`` view is reported as
``ssim_w51_pad40``, exactly the name the reference scripts' numbers have always had here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from bench.errors import ConfigError
from bench.metrics import preprocess


@dataclass(frozen=True)
class View:
    name: str
    suffix: str  # appended to the metric name in results ("" for the plain eval view)
    description: str
    make: Callable[[torch.Tensor], torch.Tensor]  # uint8 (B,3,H,W) -> float32 [0, 1]


def _eval(u8: torch.Tensor) -> torch.Tensor:
    return u8.to(torch.float32) / 255.0


def _pad40(u8: torch.Tensor) -> torch.Tensor:
    return preprocess.pad40(u8.to(torch.float32)) / 255.0


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View("eval", "", "the eval-size images divided by 255 (float32)", _eval),
        View(
            "pad40",
            "_pad40",
            "both images pasted into a white 256x256 canvas at columns 40:216 first "
            "(DPTN `pad_256`, PATN `addBounding`)",
            _pad40,
        ),
    )
}


def get_view(name: str) -> View:
    try:
        return VIEWS[name]
    except KeyError:
        raise ConfigError(f"unknown image view {name!r}; choose one of {', '.join(VIEWS)}") from None
