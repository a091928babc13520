"""--device: the torch SSIM filters (the GPU's) equal scikit-image on the CPU, every protocol end to end
on them, device resolution and exact arithmetic. CUDA-marked tests repeat the checks on a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _metrics_data import evaluate_root, smooth_image, write_generated, write_root
from scipy import ndimage
from skimage.metrics import structural_similarity

from bench.errors import ConfigError
from bench.metrics import ssim as ssim_mod
from bench.metrics.device import exact_arithmetic, resolve_device
from bench.metrics.preprocess import pad40
from bench.metrics.protocols import PROTOCOLS
from bench.metrics.ssim import ssim_gauss_dr, ssim_w51, torch_filters

RTOL = 1e-6
CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the same code runs with device='cpu' in the tests above",
)


def _pairs(
    n: int = 3, size: tuple[int, int] = (256, 176), seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    gt = np.stack([smooth_image(rng, size) for _ in range(n)])
    pred = np.clip(gt.astype(np.int16) + rng.integers(-30, 31, gt.shape), 0, 255).astype(np.uint8)
    to = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    return to(gt), to(pred)


def _skimage(gt: np.ndarray, pred: np.ndarray, variant: str, dtype: str) -> float:
    cast = (lambda a: a.astype(np.float64)) if dtype == "float64" else (lambda a: a)
    if variant == "w51":
        return structural_similarity(cast(gt), cast(pred), data_range=1, win_size=51, channel_axis=0)
    sigma = {"g15": 1.5, "g12": 1.2}[variant]
    g, p = gt * 255.0, pred * 255.0  # float32, as the scripts multiply
    return structural_similarity(
        cast(g),
        cast(p),
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        channel_axis=0,
        data_range=p.max() - p.min(),
    )


def _ours(gt: torch.Tensor, pred: torch.Tensor, variant: str, dtype: str) -> torch.Tensor:
    if variant == "w51":
        return ssim_w51(gt, pred, dtype=dtype)
    return ssim_gauss_dr(gt, pred, {"g15": 1.5, "g12": 1.2}[variant], dtype=dtype)


def _check_ssim(device: str) -> None:
    gt, pred = _pairs()
    for padded in (False, True):
        g, p = (pad40(gt * 255.0) / 255.0, pad40(pred * 255.0) / 255.0) if padded else (gt, pred)
        for variant in ("w51", "g15", "g12"):
            for dtype in ("float32", "float64"):
                with torch_filters():
                    ours = _ours(g.to(device), p.to(device), variant, dtype).cpu()
                for i in range(g.shape[0]):
                    ref = float(_skimage(g[i].numpy(), p[i].numpy(), variant, dtype))
                    assert ours[i].item() == pytest.approx(ref, rel=RTOL), (variant, dtype, padded, i)


def test_torch_filters_equal_ndimage_map_for_map() -> None:
    x = torch.from_numpy(np.random.default_rng(1).random((4, 64, 52), dtype=np.float32))
    for win, sigma in ((51, None), (11, 1.5), (9, 1.2), (7, None)):
        for dtype in (torch.float32, torch.float64):
            xi = x.to(dtype)
            with torch_filters():
                ours = ssim_mod._filter_valid(xi, win, sigma)
            ref = ssim_mod._ndimage_valid(xi, win, sigma)
            assert ours.dtype == ref.dtype == dtype
            # float64 accumulation then a cast, as ndimage does: equal up to the last float32 bit
            torch.testing.assert_close(ours, ref, rtol=2e-7 if dtype == torch.float32 else 1e-13, atol=0)
    # the crop really removes exactly the reflected border ndimage would add
    a = x[0].numpy()
    full = ndimage.uniform_filter(a, size=9)
    np.testing.assert_allclose(ssim_mod._ndimage_valid(x[:1], 9, None)[0].numpy(), full[4:-4, 4:-4])


def test_torch_ssim_matches_skimage_every_variant_and_dtype_on_cpu() -> None:
    _check_ssim("cpu")


@CUDA
def test_torch_ssim_matches_skimage_on_cuda() -> None:
    _check_ssim("cuda")


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_protocol_end_to_end_on_the_torch_filters(
    tmp_path: Path, pool_fid: None, protocol: str
) -> None:
    """The GPU's filter code, run on the CPU through the whole engine, gives the parity-tested numbers."""
    root = write_root(tmp_path / "data")
    size = PROTOCOLS[protocol].eval_size
    write_generated(tmp_path / "gen", root, size)
    ref, ref_rows = evaluate_root(root, tmp_path / "gen", protocol, tmp_path)
    with torch_filters():
        ours, rows = evaluate_root(root, tmp_path / "gen", protocol, tmp_path)
    assert ours["device"] == "cpu" and ours["dtype"] == "float32"
    for a, b in zip(rows, ref_rows):
        for k, v in b.items():
            if k != "pair_id":
                assert a[k] == pytest.approx(v, rel=RTOL, nan_ok=True), (protocol, k)
    assert ours["metrics"].keys() == ref["metrics"].keys()


@CUDA
@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_protocol_on_cuda_agrees_with_cpu(tmp_path: Path, pool_fid: None, protocol: str) -> None:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, PROTOCOLS[protocol].eval_size)
    cpu, cpu_rows = evaluate_root(root, tmp_path / "gen", protocol, tmp_path, device="cpu")
    gpu, gpu_rows = evaluate_root(root, tmp_path / "gen", protocol, tmp_path / "g", device="cuda")
    assert gpu["device"].startswith("cuda:")
    for a, b in zip(gpu_rows, cpu_rows):
        for k, v in b.items():
            if k != "pair_id":
                assert a[k] == pytest.approx(v, rel=1e-5, nan_ok=True), (protocol, k)
    for k, v in cpu["metrics"].items():
        assert gpu["metrics"][k] == pytest.approx(v, rel=1e-4), (protocol, k)


def test_device_resolution_and_messages() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="only cpu and cuda"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device.*--device cpu"):
            resolve_device("cuda:1")


def test_exact_arithmetic_turns_tf32_off_and_restores() -> None:
    matmul = torch.backends.cuda.matmul
    before = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision())
    matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = True, True
    torch.set_float32_matmul_precision("medium")
    try:
        with exact_arithmetic():
            assert not matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
            assert torch.get_float32_matmul_precision() == "highest"
            assert not matmul.allow_bf16_reduced_precision_reduction
        assert matmul.allow_tf32 and torch.get_float32_matmul_precision() == "medium"
    finally:
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[:2]
        torch.set_float32_matmul_precision(before[2])
