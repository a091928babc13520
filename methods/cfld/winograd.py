"""Winograd F(4x4, 3x3) convolution for CPU fp32 sampling.

Why: two thirds of a CFLD sampling step's 2.39 TFLOP are 3x3 convolutions, and on a CPU oneDNN's
direct convolution already runs them at about the machine's sgemm rate, so only doing fewer
multiplications makes them faster. Winograd's minimal filtering (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", CVPR 2016) computes each 4x4 output tile from a 6x6 input tile
with 36 instead of 144 multiplications per (input, output) channel pair:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise, summed over input channels)

Here the 36 elementwise products summed over channels become 36 matrix products
(tiles x C_in) @ (C_in x C_out), one ``bmm``; the tile transforms are small matrix products over
all tiles at once (the 2-D transforms written as Kronecker products, 36x36 and 16x36).

Measured on the 2-core development CPU (batch 3, channels_last, ms direct -> Winograd): 320 ch at
64x64 121 -> 95, 960->320 at 64x64 359 -> 233, 640 ch at 32x32 126 -> 45, 1280 ch at 16x16 154 -> 49,
1280 ch at 8x8 57 -> 25. With 128 channels or fewer the tile transforms cost more than they save
(64 ch at 64x64: 6.6 -> 14.9 ms; 4 -> 320 ch: 4.0 -> 14.9 ms), so only convolutions with at least
``MIN_CHANNELS`` input and output channels switch. That leaves the tiny config (64 channels) and
the UNet's conv_in/conv_out on the direct path.

Numerics: the same sum in another order. Against a float64 convolution the fp32 result is off by
~2.5e-5 (oneDNN's direct path ~1e-5) on unit-variance inputs.

Memory: the transformed filters are 36/9 = 4x the size of the original ones and are kept (computed
on a layer's first call, again only when its weight tensor is replaced or changed in place): 8.2 GiB
for the paper config's UNet and pose adapter in fp32. :func:`filter_bytes` tells the cost before
enabling. Weights changed through ``.data`` bypass the version counter: call :func:`disable` and
:func:`enable` again after such a change.

Training, autograd, autocast (bf16/fp16) and other devices (cuDNN picks its own algorithms) always
take ``torch.nn.Conv2d``'s own path, so the fast path never touches gradients.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

MIN_CHANNELS = 256
TILE = 4  # output tile m; the input tile is m + 3 - 1 = 6

# Lavin & Gray's F(4, 3) matrices (points 0, +-1, +-2, infinity).
_BT = torch.tensor(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=torch.float64,
)
_G = torch.tensor(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=torch.float64,
)
_AT = torch.tensor(
    [
        [1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, 0],
        [0, 1, 1, 4, 4, 0],
        [0, 1, -1, 8, -8, 1],
    ],
    dtype=torch.float64,
)
# Row-major vec(P X Q^T) = kron(P, Q) vec(X): each 2-D transform is one matrix product.
_INPUT = torch.kron(_BT, _BT).to(torch.float32)  # 36 x 36
_OUTPUT = torch.kron(_AT, _AT).to(torch.float32)  # 16 x 36
_FILTER = torch.kron(_G, _G)  # 36 x 9, float64


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) filters -> (36, C_in, C_out) Winograd-domain filters G g G^T.

    Stored as (36, C_out, C_in) and returned transposed: ``bmm`` reads either layout at the same
    speed, and this one is a single matrix product with no copy (0.14 s for 1280x1280 filters;
    the float64 version took 0.6 s, 22 s for the paper UNet, for no measurable accuracy gain).
    """
    c_out, c_in = weight.shape[:2]
    g = _FILTER.to(device=weight.device, dtype=weight.dtype)
    u = g @ weight.detach().reshape(c_out * c_in, 9).T
    return u.view(36, c_out, c_in).transpose(1, 2)


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.conv2d(x, w, bias, padding=1)`` for 3x3 filters ``w`` given as ``u = transform_weight(w)``.

    ``x`` is (N, C_in, H, W) float32 in any memory layout (channels_last avoids one copy); the result
    is (N, C_out, H, W) in channels_last memory.
    """
    n, c, h, w = x.shape
    k = u.shape[2]
    th, tw = -(-h // TILE), -(-w // TILE)
    # Zero padding (C, then W, then H): 1 for the convolution, plus what rounds H, W up to whole tiles.
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1 + tw * TILE - w, 1, 1 + th * TILE - h)).contiguous()
    hp, wp = xp.shape[1], xp.shape[2]
    # Overlapping 6x6 tiles with stride 4, laid out (tile row, tile col, N, th, tw, C): one copy.
    tiles = xp.as_strided((6, 6, n, th, tw, c), (wp * c, c, hp * wp * c, TILE * wp * c, TILE * c, 1))
    v = (_INPUT.to(x.device) @ tiles.reshape(36, -1)).view(36, n * th * tw, c)
    m = torch.bmm(v, u)  # (36, tiles, C_out): the only O(C_in * C_out) work
    y = (_OUTPUT.to(x.device) @ m.view(36, -1)).view(TILE, TILE, n, th, tw, k)
    y = y.permute(2, 3, 0, 4, 1, 5)  # (N, th, 4, tw, 4, C_out)
    out = torch.empty((n, th, TILE, tw, TILE, k), dtype=x.dtype, device=x.device)
    if bias is None:
        out.copy_(y)
    else:
        torch.add(y, bias, out=out)
    out = out.view(n, th * TILE, tw * TILE, k)
    if (th * TILE, tw * TILE) != (h, w):
        out = out[:, :h, :w].contiguous()  # drop the rounding rows/columns; keep NHWC dense
    return out.permute(0, 3, 1, 2)


def eligible(module: torch.nn.Module) -> bool:
    """A plain 3x3, stride 1, padding 1 convolution with at least MIN_CHANNELS in and out."""
    return (
        type(module) is torch.nn.Conv2d
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.padding == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and min(module.in_channels, module.out_channels) >= MIN_CHANNELS
    )


def _fast_path_applies(conv: torch.nn.Conv2d, x: torch.Tensor) -> bool:
    return (
        not torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and conv.weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and x.dim() == 4
    )


def _winograd_forward(self: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    if not _fast_path_applies(self, x):
        return torch.nn.Conv2d.forward(self, x)
    weight = self.weight
    # Filters transform once; loading new weights (in place or not) bumps the key and re-transforms.
    key = (weight.data_ptr(), weight._version, weight.device)
    cached = self.__dict__.get("_winograd_filters")
    if cached is None or cached[0] != key:
        cached = (key, transform_weight(weight))
        self.__dict__["_winograd_filters"] = cached
    return conv3x3(x, cached[1], self.bias)


def filter_bytes(module: torch.nn.Module, pending_only: bool = False) -> int:
    """Bytes the transformed filters of ``module``'s eligible convolutions take; with
    ``pending_only``, only those not held yet (what enabling would still allocate)."""
    return sum(
        36 * m.in_channels * m.out_channels * m.weight.element_size()
        for m in module.modules()
        if eligible(m) and not (pending_only and "_winograd_filters" in m.__dict__)
    )


def enable(module: torch.nn.Module) -> int:
    """Route every eligible convolution inside ``module`` through :func:`conv3x3` for CPU fp32
    inference; returns how many. Parameters, state_dict and every other path are unchanged."""
    count = 0
    for m in module.modules():
        if eligible(m):
            m.forward = types.MethodType(_winograd_forward, m)
            count += 1
    return count


def disable(module: torch.nn.Module, keep_filters: bool = False) -> int:
    """Undo :func:`enable`; returns how many convolutions it restored. The transformed filters are
    freed unless ``keep_filters`` (for switching back and forth, as the benchmark does)."""
    count = 0
    for m in module.modules():
        if not keep_filters:
            m.__dict__.pop("_winograd_filters", None)
        override = m.__dict__.get("forward")
        if isinstance(override, types.MethodType) and override.__func__ is _winograd_forward:
            del m.__dict__["forward"]
            count += 1
    return count


__all__ = ["MIN_CHANNELS", "conv3x3", "disable", "eligible", "enable", "filter_bytes", "transform_weight"]
