"""Emulation exact to the reference scripts' arithmetic: FID route, PIDM's SSIM dtype, its remainder
drop order (its loaders, re-stated here from PIDM utils/metrics.py), and its L1/MAE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _metrics_data import evaluate_root, write_generated, write_root
from PIL import Image
from pytorch_fid.fid_score import calculate_frechet_distance

from bench.cli.main import main
from bench.metrics import fid as fid_module
from bench.metrics import refstats
from bench.metrics.abs_error import l1, mae_sumnorm
from bench.metrics.fid import RunningStats, frechet_distance, route
from bench.metrics.protocols import PROTOCOLS, get_protocol


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record the statistics and the value of every Frechet distance the engine computes."""
    seen: list = []
    real = fid_module.frechet_distance

    def spy(mu1, s1, mu2, s2):  # noqa: ANN001, ANN202
        value = real(mu1, s1, mu2, s2)
        seen.append(((mu1, s1, mu2, s2), value))
        return value

    monkeypatch.setattr(fid_module, "frechet_distance", spy)
    return seen


@pytest.mark.parametrize("n_pairs", [4, 7, 20])  # fewer and more images than the 12 feature dimensions
def test_emulating_protocols_take_the_reference_scripts_sqrtm_route(
    tmp_path: Path, pool_fid: None, captured: list, n_pairs: int
) -> None:
    root = write_root(tmp_path / "data", n_pairs=n_pairs if n_pairs <= 12 else None)
    write_generated(tmp_path / "gen", root, (256, 176))
    for name in ("cfld-256", "gfla-dptn", "pgpis-v1"):
        record, _ = evaluate_root(root, tmp_path / "gen", name, tmp_path)
        args, value = captured[-1]
        official = calculate_frechet_distance(*args)  # what CFLD/PIDM/GFLA's copies compute
        assert record["protocol_settings"]["fid_route"] == PROTOCOLS[name].fid_route
        if PROTOCOLS[name].fid_route == "scipy-sqrtm":
            assert value == pytest.approx(official, rel=1e-12), name
        else:
            assert value == pytest.approx(official, rel=1e-4), name


def test_route_context_and_explicit_method() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((30, 40)), rng.standard_normal((35, 40)) * 1.2  # rank-deficient
    stats = [np.mean(a, 0), np.cov(a, rowvar=False), np.mean(b, 0), np.cov(b, rowvar=False)]
    ref = calculate_frechet_distance(*stats)
    with route("scipy-sqrtm"):
        assert frechet_distance(*stats) == pytest.approx(ref, rel=1e-12)
    assert frechet_distance(*stats, method="sqrtm") == pytest.approx(ref, rel=1e-12)
    assert frechet_distance(*stats) == pytest.approx(ref, rel=1e-4)  # default: the fast route


def test_running_stats_on_the_device_equal_np_cov() -> None:
    x = np.random.default_rng(2).standard_normal((50, 6)) * 3 + 10
    rs = RunningStats(6, device="cpu")
    for s in range(0, 50, 7):
        rs.update(torch.from_numpy(x[s : s + 7]).float())
    mu, sigma = rs.finalize()
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(mu, x32.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x32, rowvar=False), rtol=1e-9, atol=1e-12)


def test_pidm_ssim_in_float64_like_scikit_image_0_17(tmp_path: Path, pool_fid: None) -> None:
    from skimage.metrics import structural_similarity

    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 256))
    record, rows = evaluate_root(root, tmp_path / "gen", "pidm", tmp_path)
    assert record["protocol_settings"]["ssim_dtype"] == "float64"
    from bench.data.deepfashion import DeepFashionDataset, pair_id

    ds = DeepFashionDataset(root, "test")
    for row, (src, tgt) in zip(rows, ds.pairs):
        gt = np.asarray(Image.open(ds.images_dir / tgt).convert("RGB").resize((256, 256), Image.BICUBIC))
        pred = np.asarray(Image.open(tmp_path / "gen" / f"{pair_id(src, tgt)}.png"))
        g, p = gt.astype(np.float32) / 255.0, pred.astype(np.float32) / 255.0  # PIDM's arrays
        # scikit-image 0.17.2 casts every input to float64 before filtering (PIDM pins it)
        w51 = structural_similarity(
            g.astype(np.float64), p.astype(np.float64), data_range=1, win_size=51, channel_axis=2
        )
        g255, p255 = g * 255.0, p * 255.0
        g12 = structural_similarity(
            g255.astype(np.float64),
            p255.astype(np.float64),
            gaussian_weights=True,
            sigma=1.2,
            use_sample_covariance=False,
            channel_axis=2,
            # PIDM's NumPy 1.x turned K1 * <float32 range> into float64; NumPy 2 would keep float32
            data_range=float(p255.max() - p255.min()),
        )
        assert row["ssim_w51"] == pytest.approx(w51, rel=1e-9)
        assert row["ssim_g12_dr"] == pytest.approx(g12, rel=1e-9)
        # PIDM utils/metrics.py compare_l1 / compare_mae on the same float32 arrays
        assert row["l1"] == pytest.approx(float(np.mean(np.abs(g - p))), rel=1e-6)
        assert row["mae_sumnorm"] == pytest.approx(float(np.sum(np.abs(g - p)) / np.sum(g + p)), rel=1e-6)
    assert {"l1", "mae_sumnorm"} <= set(record["metrics"])


def test_abs_error_batches() -> None:
    a, b = torch.rand(3, 3, 8, 6), torch.rand(3, 3, 8, 6)
    for i in range(3):
        x, y = a[i].numpy(), b[i].numpy()
        assert l1(a, b)[i].item() == pytest.approx(float(np.mean(np.abs(x - y))), rel=1e-6)
        assert mae_sumnorm(a, b)[i].item() == pytest.approx(
            float(np.abs(x - y).sum() / (x + y).sum()), rel=1e-6
        )


def _pidm_loader(folder: Path) -> list[Path]:
    """PIDM utils/metrics.py FID.compute_statistics_of_path: list(path.glob('*.jpg')) + list(path.glob('*.png'))."""
    return list(folder.glob("*.jpg")) + list(folder.glob("*.png"))


def test_drop_remainder_follows_pidms_loaders(tmp_path: Path, pool_fid: None) -> None:
    root = write_root(tmp_path / "data", n_pairs=7)
    write_generated(tmp_path / "gen", root, (256, 256))
    proto = get_protocol("pidm").with_options(drop_remainder=3)
    record, rows = evaluate_root(root, tmp_path / "gen", "pidm", tmp_path, protocol_obj=proto)
    # FID: PIDM reads the generated folder unsorted and keeps the first 6 // 3 * 3 of that order
    fid_order = [p.stem for p in _pidm_loader(tmp_path / "gen") if p.suffix == ".png"]
    # LPIPS: PIDM sorts the file list (get_image_list + sorted) before its batch loop
    lpips_order = sorted(p.name for p in (tmp_path / "gen").glob("*.png"))
    assert record["dropped_detail"]["pair_ids"] == {
        "fid": fid_order[6:],
        "lpips": [Path(n).stem for n in lpips_order[6:]],
    }
    assert record["num_fid_images"] == record["num_lpips_images"] == 6 and record["dropped"] == 1
    # the reference set: the train folder in the same loader order, remainder of 5 % 3 dropped
    kept = refstats.reference_files(root, proto)
    assert kept == _pidm_loader(root / "train_highres")[:3]


def test_drop_remainder_help_states_the_loader_order(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("evaluate", "refstats"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "directory order" in text and "*.jpg then *.png" in text, cmd
        assert "name order" not in text, cmd
