"""Target-side work done once per target (bench/metrics/targets.py) and what the grouping must not change."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
from _metrics_data import evaluate_root, write_generated, write_root
from PIL import Image
from skimage.metrics import structural_similarity

from bench.data.deepfashion import pair_id, read_pairs
from bench.metrics import preprocess
from bench.metrics import ssim as ssim_mod
from bench.metrics.features import FeatureCollector
from bench.metrics.targets import DecodeOnce, TargetFeatures, target_order


def test_target_order_groups_pairs_by_target_and_keeps_their_order() -> None:
    order = target_order(["b", "a", "b", "c", "a"])
    assert order.tolist() == [1, 4, 0, 2, 3]


def test_decode_once_shares_one_computation_between_threads() -> None:
    calls: list[str] = []

    def slow(key: str) -> str:
        calls.append(key)
        time.sleep(0.05)
        return key.upper()

    once = DecodeOnce(slow, size=2)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(once("a"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["A"] * 6 and calls == ["a"]
    assert once("b") == "B" and once("c") == "C" and calls == ["a", "b", "c"]
    assert once("a") == "A" and calls == ["a", "b", "c", "a"]  # evicted: only the last 2 are kept


def test_decode_once_raises_to_every_caller_and_retries_later() -> None:
    attempts: list[int] = []

    def flaky(key: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError(f"{key}: broken file")
        return "ok"

    once = DecodeOnce(flaky)
    with pytest.raises(ValueError, match="broken file"):
        once("x")
    assert once("x") == "ok" and len(attempts) == 2


def test_target_features_equal_the_function_on_every_row_and_run_once_per_target() -> None:
    conv = torch.nn.Conv2d(3, 4, 3).eval()

    def fn(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            y = conv(x.contiguous(memory_format=torch.channels_last))
        return [y, y.mean(dim=(2, 3), keepdim=True)]

    images = {t: torch.rand(3, 9, 7) for t in "pqrs"}
    targets = sorted("pppqqrrrrs")  # grouped, as the engine visits them; chunks of 4 split groups
    feats = TargetFeatures(fn)
    for start in range(0, len(targets), 4):
        chunk = targets[start : start + 4]
        x = torch.stack([images[t] for t in chunk])
        got = feats(x, chunk)
        want = fn(x)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-7)
        assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert feats.computed == 4  # p, q, r, s: the groups cut by a chunk border are carried over


def test_feature_vectors_come_back_in_pair_order() -> None:
    rows = np.array([3, 0, 4, 1, 2])
    feats = torch.arange(10, dtype=torch.float32).view(5, 2)
    ordered = FeatureCollector(torch.device("cpu"), keep_vectors=True)
    ordered.update(feats[np.argsort(rows)])
    shuffled = FeatureCollector(torch.device("cpu"), keep_vectors=True)
    shuffled.update(feats[:2], rows[:2])
    shuffled.update(feats[2:], rows[2:])
    a, b = ordered.finalize("x"), shuffled.finalize("x")
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_allclose(a.sigma, b.sigma, rtol=1e-12)


def test_pairs_sharing_targets_score_as_each_pair_alone(
    tmp_path: Path, pool_fid: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 pairs, each of 4 targets 3 times, listed with the targets interleaved: every per-pair value
    lands on its pair's row and equals the lpips package and scikit-image on that pair alone, each
    target is decoded once and each SSIM variant filters each target once."""
    root = write_root(tmp_path / "data", n_pairs=12)
    grouped = read_pairs(root / "fasion-resize-pairs-test.csv")
    pairs = grouped[::3] + grouped[1::3] + grouped[2::3]  # a target's pairs are never adjacent
    (root / "fasion-resize-pairs-test.csv").write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    decoded: list[str] = []
    real_decode = preprocess.decode
    monkeypatch.setattr(
        preprocess, "decode", lambda path, **kw: decoded.append(str(path)) or real_decode(path, **kw)
    )
    target_images: list[int] = []
    real_target_maps = ssim_mod.ssim_target_maps
    monkeypatch.setattr(
        ssim_mod,
        "ssim_target_maps",
        lambda gt, **kw: target_images.append(gt.shape[0]) or real_target_maps(gt, **kw),
    )
    _, rows = evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path, batch_size=5, workers=2)

    assert [r["pair_id"] for r in rows] == ids == [pair_id(a, b) for a, b in pairs]
    gt_names = [Path(p).name for p in decoded if "/test_highres/" in p]
    assert sorted(gt_names) == sorted({b for _, b in pairs})
    assert sum(target_images) == 2 * 4  # ssim_w51 and ssim_g15_dr, once per target
    net = lpips.LPIPS(net="alex", verbose=False)
    for row, (src, tgt) in zip(rows, pairs, strict=True):
        gen = np.array(Image.open(tmp_path / "gen" / f"{pair_id(src, tgt)}.png").convert("RGB"))
        gt = preprocess.resize_uint8(
            real_decode(root / "test_highres" / tgt, generated=False), (256, 176), "pil_bicubic"
        )
        g01, t01 = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0 for a in (gen, gt))
        with torch.no_grad():
            want = net(g01, t01, normalize=True).item()
        assert row["lpips_alex_v0.1"] == pytest.approx(want, rel=1e-6)
        want_ssim = structural_similarity(
            gt.astype(np.float32) / 255.0,
            gen.astype(np.float32) / 255.0,
            win_size=51,
            data_range=1.0,
            channel_axis=2,
        )
        assert row["ssim_w51"] == pytest.approx(float(want_ssim), rel=1e-6)
        g255, t255 = gen.astype(np.float32), gt.astype(np.float32)
        want_g15 = structural_similarity(
            t255,
            g255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=float(g255.max() - g255.min()),
            channel_axis=2,
        )
        assert row["ssim_g15_dr"] == pytest.approx(float(want_g15), rel=1e-6)


def test_lpips_takes_the_gt_features_given_chunk_by_chunk(fake_weights: Path) -> None:
    """The engine hands the targets' features in; LPIPS still scores in chunks of CHUNK pairs (memory)
    and gives the values it computes itself."""
    from bench.metrics.lpips_metric import CHUNK, Lpips

    lp = Lpips("alex", fake_weights / "alexnet-owt-7be5be79.pth")
    g = torch.Generator().manual_seed(0)
    pred, gt = (torch.rand(CHUNK + 3, 3, 64, 48, generator=g) * 2 - 1 for _ in range(2))
    asked: list[slice] = []

    def gt_features(x: torch.Tensor, sl: slice) -> list[torch.Tensor]:
        asked.append(sl)
        return lp.features(gt[sl])

    torch.testing.assert_close(lp(pred, gt, gt_features=gt_features), lp(pred, gt), rtol=0, atol=0)
    assert asked == [slice(0, CHUNK), slice(CHUNK, 2 * CHUNK)]
