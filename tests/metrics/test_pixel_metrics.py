"""SSIM and PSNR equal scikit-image with each protocol's exact arguments (float32 inputs as the scripts pass)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _metrics_data import smooth_image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.metrics.preprocess import pad40
from bench.metrics.psnr import psnr
from bench.metrics.ssim import ssim_gauss_dr, ssim_w51

RTOL = 1e-6


def _pair(size: tuple[int, int], seed: int, n: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    gt = np.stack([smooth_image(rng, size) for _ in range(n)])
    noise = rng.integers(-30, 31, gt.shape)
    pred = np.clip(gt.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    to = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
    return to(gt), to(pred)


def _ref_ssim_w51(gt: np.ndarray, pred: np.ndarray) -> float:
    return structural_similarity(gt, pred, data_range=1, win_size=51, channel_axis=0)


def _ref_ssim_dr(gt: np.ndarray, pred: np.ndarray, sigma: float) -> float:
    g, p = gt * 255.0, pred * 255.0
    return structural_similarity(
        g,
        p,
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        channel_axis=0,
        data_range=p.max() - p.min(),
    )


@pytest.mark.parametrize("size", [(256, 176), (256, 256), (64, 52)])
def test_ssim_variants_match_skimage(size: tuple[int, int]) -> None:
    gt, pred = _pair(size, seed=size[1])
    ours = {
        "w51": ssim_w51(gt, pred),
        "g15": ssim_gauss_dr(gt, pred, 1.5),
        "g12": ssim_gauss_dr(gt, pred, 1.2),
    }
    for i in range(gt.shape[0]):
        g, p = gt[i].numpy(), pred[i].numpy()
        assert g.dtype == np.float32  # the dtype the reference scripts hand to skimage
        ref = {"w51": _ref_ssim_w51(g, p), "g15": _ref_ssim_dr(g, p, 1.5), "g12": _ref_ssim_dr(g, p, 1.2)}
        for k in ref:
            assert ours[k][i].item() == pytest.approx(float(ref[k]), rel=RTOL), k
    # the variants really differ, so a mixed-up window would be caught
    assert abs(ours["g15"][0].item() - ours["g12"][0].item()) > 1e-3


def test_padded_variants_match_dptn_pad_256() -> None:
    gt, pred = _pair((256, 176), seed=3, n=2)
    gp, pp = pad40(gt * 255.0) / 255.0, pad40(pred * 255.0) / 255.0
    ours_w, ours_g, ours_p = ssim_w51(gp, pp), ssim_gauss_dr(gp, pp, 1.5), psnr(gp, pp)
    for i in range(2):
        # DPTN: white 256x256 float canvas, image pasted at columns 40:216, then float32 / 255.
        def pad_256(img: np.ndarray) -> np.ndarray:
            out = np.ones((256, 256, 3), dtype=float) * 255
            out[:, 40:216, :] = img
            return out

        g = pad_256((gt[i].permute(1, 2, 0).numpy() * 255).round()).astype(np.float32) / 255.0
        p = pad_256((pred[i].permute(1, 2, 0).numpy() * 255).round()).astype(np.float32) / 255.0
        g, p = g.transpose(2, 0, 1), p.transpose(2, 0, 1)
        assert ours_w[i].item() == pytest.approx(float(_ref_ssim_w51(g, p)), rel=RTOL)
        assert ours_g[i].item() == pytest.approx(float(_ref_ssim_dr(g, p, 1.5)), rel=RTOL)
        assert ours_p[i].item() == pytest.approx(peak_signal_noise_ratio(g, p, data_range=1), rel=RTOL)
    assert ours_w.mean() > ssim_w51(gt, pred).mean()  # the padding trick inflates SSIM


def test_psnr_matches_skimage() -> None:
    gt, pred = _pair((256, 176), seed=5)
    ours = psnr(gt, pred)
    for i in range(3):
        ref = peak_signal_noise_ratio(gt[i].numpy(), pred[i].numpy(), data_range=1)
        assert ours[i].item() == pytest.approx(ref, rel=RTOL)


def test_degenerate_images_give_documented_values() -> None:
    gt, _ = _pair((64, 52), seed=9, n=1)
    flat = torch.full_like(gt, 0.5)
    assert math.isnan(ssim_gauss_dr(gt, flat, 1.5)[0].item())  # data_range 0: skimage gives NaN too
    assert math.isinf(psnr(gt, gt)[0].item())  # MSE 0
    assert ssim_w51(gt, gt)[0].item() == pytest.approx(1.0, abs=1e-6)


def test_window_larger_than_image_is_refused() -> None:
    small = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="window"):
        ssim_w51(small, small)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("win", "sigma", "sample"), [(51, None, True), (11, 1.5, False), (7, None, True)])
def test_ssim_in_place_arithmetic_equals_the_plain_expressions(
    dtype: torch.dtype, win: int, sigma: float | None, sample: bool
) -> None:
    """The target's maps (``ssim_target_maps``) and the pair's (``_ssim_from_maps``, in the filters'
    buffer) must give every value of scikit-image's plain expressions, evaluated one temporary at a
    time from the five filtered maps (the order and dtype of each operation kept)."""
    from bench.metrics import ssim as ssim_mod

    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 64, 60, generator=g, dtype=dtype)
    y = (x + 0.2 * torch.rand(6, 64, 60, generator=g, dtype=dtype)).clamp(0, 1)
    cov_norm = win * win / (win * win - 1) if sample else 1.0
    maps = ssim_mod._filter_valid(torch.cat([x, y, x * x, y * y, x * y]), win, sigma)
    c1 = torch.full((6, 1, 1), 0.01**2, dtype=dtype) * torch.linspace(1, 2, 6, dtype=dtype).view(-1, 1, 1)
    c2 = torch.full((6, 1, 1), 0.03**2, dtype=dtype)
    ux, uy, uxx, uyy, uxy = maps.chunk(5)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    plain = s.to(torch.float64).mean(dim=(1, 2)).to(dtype)
    kw = {"gaussian_sigma": sigma} if sigma is not None else {"win_size": win}
    dt = {torch.float32: "float32", torch.float64: "float64"}[dtype]
    t_ux, t_vx, t_uxsq = (
        m[:, 0] for m in ssim_mod.ssim_target_maps(x[:, None], sample_covariance=sample, dtype=dt, **kw)
    )
    assert torch.equal(t_ux, ux) and torch.equal(t_vx, vx) and torch.equal(t_uxsq, ux * ux)
    pair_maps = ssim_mod._filter_valid(torch.cat([y, y * y, x * y]), win, sigma)
    target = [t.clone() for t in (t_ux, t_vx, t_uxsq)]
    ours = ssim_mod._ssim_from_maps(*target, pair_maps, cov_norm, c1, c2)
    assert torch.equal(ours, plain)
    assert all(
        torch.equal(a, b) for a, b in zip(target, (t_ux, t_vx, t_uxsq))
    )  # the target's maps are only read


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ssim_with_the_target_part_computed_once_equals_ssim(dtype: str) -> None:
    """A metric's declared target part, computed once and reused, gives every value bit for bit."""
    from bench.metrics.targets import target_part_of

    g = torch.Generator().manual_seed(5)
    gt = torch.rand(1, 3, 96, 80, generator=g).expand(4, -1, -1, -1).contiguous()  # one target, four pairs
    pred = (gt + 0.3 * torch.rand(4, 3, 96, 80, generator=g)).clamp(0, 1)
    for fn, settings in ((ssim_w51, {}), (ssim_gauss_dr, {"sigma": 1.5}), (ssim_gauss_dr, {"sigma": 1.2})):
        part = target_part_of(fn)
        once = [t.expand(4, *t.shape[1:]) for t in part(gt[:1], dtype=dtype, **settings)]
        assert torch.equal(
            fn(gt, pred, dtype=dtype, target=once, **settings), fn(gt, pred, dtype=dtype, **settings)
        )
