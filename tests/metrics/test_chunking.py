"""The memory bounds of issue 3 (chunked networks, channels_last loading) do not change any value."""

from __future__ import annotations

from pathlib import Path

import lpips
import numpy as np
import pytest
import torch

from bench.metrics import inception, lpips_metric
from bench.metrics.inception import TvInceptionV3
from bench.metrics.lpips_metric import Lpips


def _images(n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((n, 3, 64, 48), dtype=np.float32))


def test_lpips_in_uneven_chunks_equals_the_package(
    fake_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lpips_metric, "CHUNK", 2)  # 5 pairs -> chunks of 2, 2, 1
    x, y = _images(5, 0), _images(5, 1)
    ours = Lpips("alex", fake_weights / "alexnet-owt-7be5be79.pth")(2 * y - 1, 2 * x - 1)
    ref = lpips.LPIPS(net="alex", verbose=False)(y, x, normalize=True).reshape(-1).double()
    assert ours.shape == (5,)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)


def test_inception_chunks_and_channels_last_weights(
    fake_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = TvInceptionV3(fake_weights / "inception_v3_google-0cc3c7bd.pth")
    convs = [p for p in net.parameters() if p.dim() == 4 and p.shape[-1] * p.shape[-2] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    x = _images(3, 2)
    monkeypatch.setattr(inception, "CHUNK", 2)  # chunks of 2 and 1
    chunked = net(x)
    one_by_one = torch.cat([net(x[i : i + 1]) for i in range(3)])
    assert chunked.shape == (3, inception.FEATURE_DIMS)
    torch.testing.assert_close(chunked, one_by_one, rtol=1e-5, atol=1e-5 * float(one_by_one.abs().max()))
