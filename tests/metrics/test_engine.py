"""Engine behaviour: every image counted, missing/bad inputs refused clearly, caches, CLI and outputs.

These tests replace the Inception networks by a tiny pooling extractor (12-d features), so they
run in a second; parity with the real networks is test_parity.py's job.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _metrics_data import link_weights, write_generated, write_root
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset
from bench.errors import ConfigError, DataError, MissingWeightError
from bench.metrics import networks, reference, refstats
from bench.metrics.engine import EvalOptions, evaluate
from bench.metrics.protocols import get_protocol


class PoolFeatures(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.float(), (2, 2)).flatten(1)


@pytest.fixture
def cheap_fid(monkeypatch: pytest.MonkeyPatch, fake_weights: Path) -> list[str]:
    built: list[str] = []

    def build(name: str, path: Path) -> torch.nn.Module:
        built.append(name)
        return PoolFeatures()

    monkeypatch.setattr(networks, "build_extractor", build)
    return built


def run(
    root: Path, images: Path, protocol: str = "cfld-256", tmp: Path | None = None, **kw
) -> tuple[dict, list]:  # noqa: ANN003
    ds = DeepFashionDataset(root, "test")
    kw.setdefault("cache_dir", (tmp or root.parent) / "cache")
    opts = EvalOptions(allow_unverified_weights=True, progress=False, bootstrap=100, **kw)
    proto = get_protocol(protocol)
    return evaluate(proto, images, ds.pairs, ds.images_dir, root, opts)


def test_every_image_counted_batch_size_independent_and_drop_only_when_asked(
    tmp_path: Path, cheap_fid
) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data", n_pairs=7)  # an odd count, like 8,570
    write_generated(tmp_path / "gen", root, (256, 176))
    a, rows_a = run(root, tmp_path / "gen", batch_size=1)
    b, rows_b = run(root, tmp_path / "gen", batch_size=3, workers=0)
    assert a["num_images"] == a["num_expected"] == a["num_fid_images"] == 7 and a["dropped"] == 0
    assert len(rows_a) == 7 and [r["pair_id"] for r in rows_a] == [r["pair_id"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        for k in ("ssim_w51", "ssim_g15_dr", "psnr"):
            assert ra[k] == rb[k], k  # pixel metrics are computed per image: bit-identical
        assert ra["lpips_alex_v0.1"] == pytest.approx(
            rb["lpips_alex_v0.1"], rel=1e-6
        )  # conv kernels vary with B
    for k, v in a["metrics"].items():
        assert b["metrics"][k] == pytest.approx(v, rel=1e-6), k
    assert a["ci95"]["ssim_w51"][0] < a["metrics"]["ssim_w51"] < a["ci95"]["ssim_w51"][1]

    ds = DeepFashionDataset(root, "test")
    proto = get_protocol("pidm").with_options(drop_remainder=3)
    opts = EvalOptions(allow_unverified_weights=True, progress=False, bootstrap=0, cache_dir=tmp_path / "c2")
    rec, rows = evaluate(proto, tmp_path / "gen", ds.pairs, ds.images_dir, root, opts)
    assert rec["dropped"] == 1 and rec["num_fid_images"] == 6 and rec["num_images"] == 7 and len(rows) == 7
    # PIDM's loaders: LPIPS reads sorted names, FID the folder as pathlib's glob lists it (tested further
    # in test_emulation.py); each drops its own last N % k images.
    last = sorted(r["pair_id"] for r in rows)[-1]
    globbed = [p.stem for p in (tmp_path / "gen").glob("*.png")]
    assert rec["dropped_detail"]["pair_ids"] == {"lpips": [last], "fid": [globbed[-1]]}
    kept = [r["lpips_alex_v0.1"] for r in rows if r["pair_id"] != last]
    assert rec["metrics"]["lpips_alex_v0.1"] == pytest.approx(np.mean(kept), rel=1e-12)
    assert rec["metrics"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]), rel=1e-12)  # all kept
    assert rec["refstats"]["incv3tv"]["meta"]["num_images"] == 3  # 5 train images, batch-3 remainder dropped


def test_missing_pairs_are_refused_with_their_ids_unless_allowed(tmp_path: Path, cheap_fid) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    (tmp_path / "gen" / f"{ids[2]}.png").unlink()
    with pytest.raises(DataError) as err:
        run(root, tmp_path / "gen")
    assert ids[2] in str(err.value) and "--allow-missing" in str(err.value)
    rec, rows = run(root, tmp_path / "gen", allow_missing=True)
    assert rec["missing"] == [ids[2]] and rec["allow_missing"] and rec["num_images"] == 3 and len(rows) == 3


def test_single_image_fid_is_unavailable_not_nan(tmp_path: Path, cheap_fid) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    for pid in ids[1:]:
        (tmp_path / "gen" / f"{pid}.png").unlink()
    rec, _ = run(root, tmp_path / "gen", allow_missing=True)
    assert "at least 2" in rec["unavailable"]["fid_incv3tv_train"]
    assert all(np.isfinite(v) for v in rec["metrics"].values())
    with pytest.raises(DataError, match="at least 2"):
        run(root, tmp_path / "gen", allow_missing=True, strict=True)


@pytest.mark.parametrize("bad", ["corrupt", "wrong_size", "grayscale", "rgba"])
def test_bad_generated_images_are_refused_naming_the_file(tmp_path: Path, cheap_fid, bad: str) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    target = tmp_path / "gen" / f"{ids[-1]}.png"
    img = Image.open(target)
    if bad == "corrupt":
        target.write_bytes(target.read_bytes()[:200])
    elif bad == "wrong_size":
        img.resize((170, 250)).save(target)
    elif bad == "grayscale":
        img.convert("L").save(target)
    else:
        img.convert("RGBA").save(target)
    with pytest.raises(DataError) as err:
        run(root, tmp_path / "gen")
    assert str(target) in str(err.value)
    assert {"corrupt": "corrupt", "wrong_size": "wrong size", "grayscale": "mode L", "rgba": "mode RGBA"}[
        bad
    ] in str(err.value)


def test_missing_weights_make_metrics_unavailable_or_fail_when_strict(
    tmp_path: Path, weight_store: Path
) -> None:
    link_weights(weight_store, keys=("inception_v3_tv",))  # no AlexNet
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    ds = DeepFashionDataset(root, "test")
    proto = get_protocol("cfld-256")
    opts = EvalOptions(allow_unverified_weights=True, progress=False, strict=True)
    with pytest.raises(MissingWeightError, match="alexnet-owt-7be5be79.pth"):
        evaluate(proto, tmp_path / "gen", ds.pairs, ds.images_dir, root, opts)
    # without strict: those metrics are unavailable with the reason, the others are computed; the random
    # (unverified) Inception weights are not used unless explicitly allowed
    rec, _ = evaluate(
        proto, tmp_path / "gen", ds.pairs, ds.images_dir, root, EvalOptions(progress=False, bootstrap=0)
    )
    assert "does not start with 0cc3c7bd" in rec["unavailable"]["fid_incv3tv_train"]
    assert "alexnet-owt-7be5be79.pth" in rec["unavailable"]["lpips_alex_v0.1"]
    assert set(rec["metrics"]) == {"ssim_w51", "ssim_g15_dr", "psnr"}


def test_refstats_cli_cache_and_mismatch(
    tmp_path: Path, cheap_fid, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    out = tmp_path / "reports" / "refstats"
    out.mkdir(parents=True)
    args = [
        "refstats",
        "--dataset",
        str(root),
        "--protocol",
        "cfld-256",
        "--allow-unverified-weights",
        "--no-progress",
    ]
    assert main([*args, "--out", str(out) + "/"]) == 0
    (npz,) = out.glob("*.npz")
    assert npz.name.startswith("cfld-256_incv3tv_train-glob_n5_files")
    st = refstats.load(npz)
    assert st.meta["num_images"] == 5 and st.mu.shape == (12,)

    base = [
        "evaluate",
        "--protocol",
        "cfld-256",
        "--images",
        str(tmp_path / "gen"),
        "--dataset",
        str(root),
        "--allow-unverified-weights",
        "--no-progress",
        "--bootstrap",
        "50",
    ]
    metrics, per_image = tmp_path / "m.json", tmp_path / "p.csv"
    assert main([*base, "--refstats", str(npz), "--out", str(metrics), "--per-image", str(per_image)]) == 0
    rec = json.loads(metrics.read_text())
    for key in (
        "protocol",
        "protocol_settings",
        "method",
        "images",
        "num_images",
        "num_expected",
        "missing",
        "allow_missing",
        "dropped",
        "metrics",
        "ci95",
        "unavailable",
        "weights",
        "versions",
    ):
        assert key in rec, key
    assert "git" not in rec and "timing_seconds" not in rec  # run facts: printed, not in the file
    assert rec["method"] == "fake" and rec["refstats"]["incv3tv"]["source"] == str(npz)
    with per_image.open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 and set(table[0]) == {
        "pair_id",
        "lpips_alex_v0.1",
        "ssim_w51",
        "ssim_g15_dr",
        "psnr",
    }

    # a pytorch-fid npz (mu, sigma only) is accepted and marked as imported
    plain = tmp_path / "plain.npz"
    np.savez(plain, mu=st.mu, sigma=st.sigma)
    assert main([*base, "--refstats", str(plain), "--out", str(metrics)]) == 0
    rec2 = json.loads(metrics.read_text())
    assert rec2["refstats"]["incv3tv"]["imported_without_metadata"]
    assert rec2["metrics"]["fid_incv3tv_train"] == pytest.approx(
        rec["metrics"]["fid_incv3tv_train"], rel=1e-12
    )

    # the dataset's reference file list changed: the stored statistics are refused (exit 2)
    Image.open(next((root / "train_highres").glob("*.jpg"))).save(
        root / "train_highres" / "fashionMENPantsid0000009901_1front.jpg"
    )
    capsys.readouterr()
    assert main([*base, "--refstats", str(npz), "--out", str(metrics)]) == 2
    assert "file_list_sha256" in capsys.readouterr().err

    # missing pairs through the CLI: exit 2 naming --allow-missing
    next((tmp_path / "gen").glob("*.png")).unlink()
    assert main([*base, "--out", str(metrics), "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "--allow-missing" in capsys.readouterr().err


def test_reference_statistics_are_cached_under_a_name_encoding_every_choice(
    tmp_path: Path,
    cheap_fid,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    cold, _ = run(root, tmp_path / "gen")
    assert not cold["refstats"]["incv3tv"]["cached"]
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1 and "_set" in cached[0].name

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("reference images were read again")

    monkeypatch.setattr(reference, "reference_stats", boom)
    warm, _ = run(root, tmp_path / "gen")
    assert warm["refstats"]["incv3tv"]["cached"]
    assert warm["metrics"] == cold["metrics"]
    # another protocol (other resize/listing) never reuses it
    with pytest.raises(AssertionError, match="read again"):
        run(root, tmp_path / "gen", protocol="pgpis-v1")


def test_unknown_protocol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cfld-256"):
        get_protocol("cfld")


def test_offline_pipeline_reports_fid_unavailable_through_a_placeholder(
    tmp_path: Path, weight_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_weights(weight_store, keys=("alexnet",))  # offline: no Inception weights
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    stats = tmp_path / "refstats" / "cfld-256.npz"
    args = [
        "refstats",
        "--dataset",
        str(root),
        "--protocol",
        "cfld-256",
        "--out",
        str(stats),
        "--no-progress",
    ]
    assert main(args) == 2
    assert "inception_v3_google-0cc3c7bd.pth" in capsys.readouterr().err and not stats.exists()
    assert main([*args, "--if-weights-missing", "placeholder"]) == 0
    metrics = tmp_path / "metrics.json"
    cmd = [
        "evaluate",
        "--protocol",
        "cfld-256",
        "--images",
        str(tmp_path / "gen"),
        "--dataset",
        str(root),
        "--refstats",
        str(stats),
        "--out",
        str(metrics),
        "--allow-unverified-weights",
        "--no-progress",
    ]
    assert main(cmd) == 0
    rec = json.loads(metrics.read_text())
    assert "inception_v3_google-0cc3c7bd.pth" in rec["unavailable"]["fid_incv3tv_train"]
    assert "lpips_alex_v0.1" in rec["metrics"]
    assert main([*cmd, "--strict"]) == 2


def test_statistics_of_another_extractor_are_refused(tmp_path: Path, cheap_fid) -> None:  # noqa: ANN001
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    other = tmp_path / "other.npz"
    meta = {"extractor": "ptincv3", "protocol": "pgpis-v1"}
    refstats.save(other, refstats.RefStats(mu=np.zeros(12), sigma=np.eye(12), meta=meta))
    with pytest.raises(ConfigError, match="ptincv3"):
        run(root, tmp_path / "gen", refstats_files=[other])


def test_help_texts_name_protocols_flags_and_formats(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd, words in (
        (
            "evaluate",
            ["cfld-256", "pidm", "gfla-dptn", "pgpis-v1", "--allow-missing", "--strict", "unavailable"],
        ),
        ("refstats", ["--out", "mu", "sigma", "canonical"]),
        ("fetch-weights", ["TORCH_HOME", "sha256", "--base-url"]),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([cmd, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        for w in words:
            assert w in out, (cmd, w)
