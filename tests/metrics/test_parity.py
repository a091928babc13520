"""With identical random-init weights and images, our numbers equal the reference implementations.

References: pytorch-fid's ``InceptionV3`` and statistics; CFLD's metric module (torchvision
Inception blocks + its input scaling, written here from its public description); the ``lpips``
package; scikit-image with each protocol's arguments; each protocol's preprocessing (PIL vs
cv2 resizes, CFLD's truncating quantisation, DPTN's white padding). FID statistics are compared
directly (the 2048-d ``sqrtm`` costs minutes here; ``frechet_distance`` itself is checked
against pytorch-fid in test_fid.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import lpips
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _metrics_data import link_weights, write_generated
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn
from torchvision import transforms

from bench.data.deepfashion import DeepFashionDataset, pair_id, read_list
from bench.metrics import fid as fid_module
from bench.metrics.engine import EvalOptions, evaluate
from bench.metrics.inception import PtInceptionV3, TvInceptionV3
from bench.metrics.lpips_metric import Lpips
from bench.metrics.protocols import get_protocol
from bench.metrics.weights import checkpoints_dir

RTOL = 1e-6


# ---------------------------------------------------------------- reference implementations


class CfldInception(nn.Module):
    """CFLD models/metrics.py: torchvision IMAGENET1K_V1 blocks, bilinear 299, per-channel scaling."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision import models

        net = models.inception_v3(weights=models.Inception_V3_Weights.IMAGENET1K_V1)  # from TORCH_HOME
        names = [
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            None,
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            None,
        ]
        names += [
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
        ]
        names += ["Mixed_7a", "Mixed_7b", "Mixed_7c"]
        mods = [nn.MaxPool2d(3, 2) if n is None else getattr(net, n) for n in names]
        self.blocks = nn.Sequential(*mods, nn.AdaptiveAvgPool2d((1, 1))).eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear")
        x[:, 0] = x[:, 0] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x[:, 1] = x[:, 1] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x[:, 2] = x[:, 2] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return self.blocks(x).reshape(x.shape[0], -1)


def pytorch_fid_features(x: torch.Tensor) -> torch.Tensor:
    from pytorch_fid.inception import InceptionV3

    model = InceptionV3([3]).eval()  # loads pt_inception-2015-12-05-6726825d.pth from TORCH_HOME
    with torch.no_grad():
        return model(x)[0].reshape(x.shape[0], -1)


def ssim_w51_ref(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(structural_similarity(gt, pred, data_range=1, win_size=51, channel_axis=0))


def ssim_dr_ref(gt: np.ndarray, pred: np.ndarray, sigma: float) -> float:
    g, p = gt * 255.0, pred * 255.0
    return float(
        structural_similarity(
            g,
            p,
            gaussian_weights=True,
            sigma=sigma,
            use_sample_covariance=False,
            channel_axis=0,
            data_range=p.max() - p.min(),
        )
    )


def stats(feats: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    a = feats.double().numpy()
    return np.mean(a, axis=0), np.cov(a, rowvar=False)


def assert_stats_close(ours: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> None:
    # channels_last vs the default layout: float32 summation order differs; far inside FID's 1e-4.
    scale = float(np.abs(ref[1]).max())
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-4, atol=1e-5 * float(np.abs(ref[0]).max()))
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-3, atol=1e-4 * scale)


@pytest.fixture
def capture_fid(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    seen: list[tuple] = []

    def fake(mu1, s1, mu2, s2):  # noqa: ANN001, ANN202
        seen.append((mu1, s1, mu2, s2))
        return 0.0

    monkeypatch.setattr(fid_module, "frechet_distance", fake)
    return seen


def _run(protocol: str, images: Path, root: Path, tmp: Path, **kw) -> tuple[dict, list[dict]]:  # noqa: ANN003
    ds = DeepFashionDataset(root, "test")
    opts = EvalOptions(
        allow_unverified_weights=True, cache_dir=tmp / "cache", progress=False, bootstrap=50, **kw
    )
    return evaluate(get_protocol(protocol), images, ds.pairs, ds.images_dir, root, opts)


def _check_rows(rows: list[dict], ref: dict[str, list[float]], ids: list[str]) -> None:
    assert [r["pair_id"] for r in rows] == ids
    for name, values in ref.items():
        ours = [r[name] for r in rows]
        np.testing.assert_allclose(ours, values, rtol=RTOL, err_msg=name)


# ---------------------------------------------------------------- extractor / LPIPS modules


def test_extractors_and_lpips_equal_reference_modules(fake_weights: Path) -> None:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((2, 3, 256, 176), dtype=np.float32))
    ours = PtInceptionV3(fake_weights / "pt_inception-2015-12-05-6726825d.pth")(x)
    ref = pytorch_fid_features(x)
    assert ref.std(0).mean() > 1e-3  # calibrated random weights: features differ between images
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
    ours = TvInceptionV3(fake_weights / "inception_v3_google-0cc3c7bd.pth")(x)
    ref = CfldInception()(x.clone())
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))

    y = (x + 0.1 * torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))).clamp(0, 1)
    ours = Lpips("alex", fake_weights / "alexnet-owt-7be5be79.pth")(2 * y - 1, 2 * x - 1)
    ref = lpips.LPIPS(net="alex", verbose=False)(y, x, normalize=True).reshape(-1).double()
    torch.testing.assert_close(ours, ref, rtol=RTOL, atol=0)


# ---------------------------------------------------------------- protocols end to end


def test_cfld_256_equals_cfld_evaluation(
    tiny_root: Path, tmp_path: Path, fake_weights: Path, capture_fid
) -> None:  # noqa: ANN001
    ids = write_generated(tmp_path / "gen", tiny_root, (256, 256))  # CFLD resizes non-256x176 samples itself
    record, rows = _run("cfld-256", tmp_path / "gen", tiny_root, tmp_path, batch_size=3)

    to_tensor = transforms.Compose(
        [
            transforms.Resize((256, 176), interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
            transforms.ToTensor(),
        ]
    )
    ds = DeepFashionDataset(tiny_root, "test")
    gts, preds = [], []
    for src, tgt in ds.pairs:
        gts.append(to_tensor(Image.open(ds.images_dir / tgt).convert("RGB")))
        s = transforms.ToTensor()(Image.open(tmp_path / "gen" / f"{pair_id(src, tgt)}.png"))[None]
        s = F.interpolate(s, (256, 176), mode="bicubic", antialias=True).float() * 255.0
        preds.append((s.clamp(0, 255).to(torch.uint8).to(torch.float32) / 255.0)[0])
    gt, pred = torch.stack(gts), torch.stack(preds)
    reals = torch.stack(
        [to_tensor(Image.open(p).convert("RGB")) for p in sorted((tiny_root / "train_highres").glob("*.jpg"))]
    )

    inc = CfldInception()
    (mu_g, s_g, mu_r, s_r) = capture_fid[0]
    assert_stats_close((mu_g, s_g), stats(inc(pred.clone())))
    assert_stats_close((mu_r, s_r), stats(inc(reals.clone())))
    lp = lpips.LPIPS(net="alex", verbose=False)(pred, gt, normalize=True).reshape(-1).tolist()
    g, p = gt.numpy(), pred.numpy()
    _check_rows(
        rows,
        {
            "lpips_alex_v0.1": lp,
            "ssim_w51": [ssim_w51_ref(g[i], p[i]) for i in range(len(g))],
            "ssim_g15_dr": [ssim_dr_ref(g[i], p[i], 1.5) for i in range(len(g))],
            "psnr": [peak_signal_noise_ratio(g[i], p[i], data_range=1) for i in range(len(g))],
        },
        ids,
    )
    assert record["num_images"] == record["num_fid_images"] == 4 and record["dropped"] == 0
    assert record["metrics"]["ssim_w51"] == pytest.approx(np.mean([r["ssim_w51"] for r in rows]), rel=1e-12)
    assert record["refstats"]["incv3tv"]["meta"]["num_images"] == 5


def test_pidm_equals_pidm_metrics(tiny_root: Path, tmp_path: Path, fake_weights: Path, capture_fid) -> None:  # noqa: ANN001
    ids = write_generated(tmp_path / "gen", tiny_root, (256, 256))
    record, rows = _run("pidm", tmp_path / "gen", tiny_root, tmp_path)

    def png256(path: Path) -> np.ndarray:  # prepare_data.py: PIL BICUBIC to 256x256, saved as PNG
        return np.asarray(Image.open(path).convert("RGB").resize((256, 256), Image.BICUBIC))

    def cv(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img.astype(np.float32), (176, 256))

    ds = DeepFashionDataset(tiny_root, "test")
    gt = [png256(ds.images_dir / t) for _, t in ds.pairs]
    pred = [np.asarray(Image.open(tmp_path / "gen" / f"{pair_id(s, t)}.png")) for s, t in ds.pairs]
    reals = [png256(tiny_root / "train_highres" / n) for n in read_list(tiny_root / "train.lst")]
    chw = lambda arrs: torch.from_numpy(np.stack(arrs).transpose(0, 3, 1, 2).copy())  # noqa: E731
    inc = CfldInception()
    (mu_g, s_g, mu_r, s_r) = capture_fid[0]
    assert_stats_close((mu_g, s_g), stats(inc(chw([cv(p) for p in pred]) / 255)))
    assert_stats_close((mu_r, s_r), stats(inc(chw([cv(r) for r in reals]) / 255)))
    lp = (
        lpips.LPIPS(net="alex", verbose=False)(
            chw([cv(p) / 127.5 - 1 for p in pred]), chw([cv(g) / 127.5 - 1 for g in gt])
        )
        .reshape(-1)
        .tolist()
    )
    g32 = [(x.astype(np.float32) / 255.0).transpose(2, 0, 1) for x in gt]
    p32 = [(x.astype(np.float32) / 255.0).transpose(2, 0, 1) for x in pred]
    _check_rows(
        rows,
        {
            "lpips_alex_v0.1": lp,
            "ssim_w51": [ssim_w51_ref(a, b) for a, b in zip(g32, p32)],
            "ssim_g12_dr": [ssim_dr_ref(a, b, 1.2) for a, b in zip(g32, p32)],
            "psnr": [peak_signal_noise_ratio(a, b, data_range=1) for a, b in zip(g32, p32)],
        },
        ids,
    )
    assert record["protocol_settings"]["cv2_metric_size"] == [256, 176]


def test_gfla_dptn_padded_metrics_and_unavailable_fid(
    tiny_root: Path, tmp_path: Path, weight_store: Path
) -> None:
    link_weights(weight_store, keys=("alexnet",))  # no Inception weights: FID must be reported unavailable
    ids = write_generated(tmp_path / "gen", tiny_root, (256, 176))
    record, rows = _run("gfla-dptn", tmp_path / "gen", tiny_root, tmp_path)
    reason = record["unavailable"]["fid_incv3tv_train"]
    assert "inception_v3_google-0cc3c7bd.pth" in reason and "download.pytorch.org" in reason
    assert str(checkpoints_dir()) in reason and "fid_incv3tv_train" not in record["metrics"]

    ds = DeepFashionDataset(tiny_root, "test")
    gt = [
        np.asarray(Image.open(ds.images_dir / t).convert("RGB").resize((176, 256), Image.BICUBIC))
        for _, t in ds.pairs
    ]
    pred = [np.asarray(Image.open(tmp_path / "gen" / f"{pair_id(s, t)}.png")) for s, t in ds.pairs]

    def pad_256(img: np.ndarray) -> np.ndarray:
        out = np.ones((256, 256, 3), dtype=float) * 255
        out[:, 40:216, :] = img
        return (out.astype(np.float32) / 255.0).transpose(2, 0, 1)

    chw = lambda arrs: torch.from_numpy(np.stack(arrs).transpose(0, 3, 1, 2).astype(np.float32))  # noqa: E731
    lp = (
        lpips.LPIPS(net="alex", verbose=False)(chw(pred) / 127.5 - 1, chw(gt) / 127.5 - 1)
        .reshape(-1)
        .tolist()
    )
    gp, pp = [pad_256(x) for x in gt], [pad_256(x) for x in pred]
    _check_rows(
        rows,
        {
            "lpips_alex_v0.1": lp,
            "ssim_w51_pad40": [ssim_w51_ref(a, b) for a, b in zip(gp, pp)],
            "ssim_g15_dr_pad40": [ssim_dr_ref(a, b, 1.5) for a, b in zip(gp, pp)],
            "psnr_pad40": [peak_signal_noise_ratio(a, b, data_range=1) for a, b in zip(gp, pp)],
        },
        ids,
    )


def test_pgpis_v1_fid_statistics_equal_pytorch_fid(
    tiny_root: Path, tmp_path: Path, fake_weights: Path, capture_fid
) -> None:  # noqa: ANN001
    write_generated(tmp_path / "gen", tiny_root, (256, 176))
    record, rows = _run("pgpis-v1", tmp_path / "gen", tiny_root, tmp_path)
    ds = DeepFashionDataset(tiny_root, "test")
    tt = transforms.ToTensor()
    pred = torch.stack([tt(Image.open(tmp_path / "gen" / f"{pair_id(s, t)}.png")) for s, t in ds.pairs])
    reals = torch.stack(
        [
            tt(Image.open(tiny_root / "train_highres" / n).convert("RGB").resize((176, 256), Image.BICUBIC))
            for n in read_list(tiny_root / "train.lst")
        ]
    )
    (mu_g, s_g, mu_r, s_r) = capture_fid[0]
    assert_stats_close((mu_g, s_g), stats(pytorch_fid_features(pred)))
    assert_stats_close((mu_r, s_r), stats(pytorch_fid_features(reals)))
    assert set(record["metrics"]) == {
        "fid_ptincv3_train",
        "lpips_alex_v0.1",
        "ssim_w51",
        "ssim_g15_dr",
        "ssim_g12_dr",
        "ssim_w51_pad40",
        "ssim_g15_dr_pad40",
        "psnr",
        "psnr_pad40",
    }
    assert record["weights_unverified"] and all(len(v) == 64 for v in record["weights"].values())


@pytest.mark.slow
def test_pgpis_v1_fid_value_equals_pytorch_fid_end_to_end(
    tiny_root: Path, tmp_path: Path, fake_weights: Path
) -> None:
    """The full 2048-d FID number against pytorch-fid's own command path (minutes: two 2048-d sqrtm)."""
    from pytorch_fid.fid_score import calculate_fid_given_paths

    write_generated(tmp_path / "gen", tiny_root, (256, 176))
    record, _ = _run("pgpis-v1", tmp_path / "gen", tiny_root, tmp_path)
    real = tmp_path / "real_256x176"
    real.mkdir()
    for n in read_list(tiny_root / "train.lst"):
        img = Image.open(tiny_root / "train_highres" / n).convert("RGB").resize((176, 256), Image.BICUBIC)
        img.save(real / f"{Path(n).stem}.png")
    gen_only = tmp_path / "gen_png"
    gen_only.mkdir()
    for p in (tmp_path / "gen").glob("*.png"):
        (gen_only / p.name).write_bytes(p.read_bytes())
    ref = calculate_fid_given_paths(
        [str(gen_only), str(real)], batch_size=4, device="cpu", dims=2048, num_workers=0
    )
    assert record["metrics"]["fid_ptincv3_train"] == pytest.approx(ref, rel=1e-4)
