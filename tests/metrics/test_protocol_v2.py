"""pgpis-v2: KID, FD-DINOv2 and precision/recall/density/coverage through the engine, in the same pass.

The Inception is the 12-d pooling stand-in and DINOv2 a tiny random ViT in the official checkpoint
format (its real code and dgm-eval view). Expected values are computed here from features this test
extracts itself (PIL decoding and resizing, the networks called directly), with the reference
implementations: torch-fidelity's KID, the prdc package, and a NumPy Fréchet distance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _dinov2_data import write_tiny_dinov2
from _metrics_data import PoolFeatures, evaluate_root, smooth_image, write_generated, write_root
from PIL import Image

from bench.data.deepfashion import pair_id, read_pairs
from bench.metrics import extractors, networks, refstats, weights
from bench.metrics.dinov2 import DinoV2Features
from bench.metrics.fid import frechet_distance
from bench.metrics.outputs import write_outputs

EXTRA_TRAIN = 8  # 13 reference images, 12 pairs: more than k=5 on both sides for PRDC


@pytest.fixture
def v2_root(tmp_path: Path) -> Path:
    root = write_root(tmp_path / "data", n_pairs=12)
    rng = np.random.default_rng(5)
    names = [f"fashionWOMENBlousesid{i:08d}03_1front.jpg" for i in range(EXTRA_TRAIN)]
    for name in names:
        Image.fromarray(smooth_image(rng, (150, 102))).save(root / "train_highres" / name, quality=95)
    with open(root / "train.lst", "a") as fh:
        fh.write("".join(n + "\n" for n in names))
    return root


@pytest.fixture
def v2_networks(monkeypatch: pytest.MonkeyPatch, fake_weights: Path) -> Path:
    """Inception: the pooling stand-in; DINOv2: a tiny random ViT at the official file name (unverified)."""
    dino = write_tiny_dinov2(fake_weights / weights.WEIGHTS["dinov2_vitl14"].filename)
    real = extractors.build
    monkeypatch.setattr(
        networks,
        "build_extractor",
        lambda name, path: real(name, path) if name == "dinov2_vitl14" else PoolFeatures(),
    )
    return dino


def _eval_image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((176, 256), Image.BICUBIC))


def _features(images: list[np.ndarray], dino: Path) -> dict[str, np.ndarray]:
    """Both extractors' features of uint8 eval images, computed without the engine."""
    x = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in images]).float() / 255
    v224 = [np.asarray(Image.fromarray(a).resize((224, 224), Image.BICUBIC)) for a in images]
    d = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1) for a in v224]).float() / 255
    return {
        "ptincv3": PoolFeatures()(x).double().numpy(),
        "dinov2_vitl14": DinoV2Features(dino)(d).double().numpy(),
    }


def test_v2_adds_the_new_metrics_and_keeps_every_v1_number(
    v2_root: Path, v2_networks: Path, tmp_path: Path
) -> None:
    from prdc import compute_prdc
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    write_generated(tmp_path / "gen", v2_root, (256, 176))
    v1, _ = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v1", tmp_path)
    v2, rows = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path)
    assert not v2["unavailable"], v2["unavailable"]
    for name, value in v1["metrics"].items():  # same names, same values, same intervals
        assert v2["metrics"][name] == value and v2["ci95"].get(name) == v1["ci95"].get(name), name

    pairs = read_pairs(v2_root / "fasion-resize-pairs-test.csv")
    gen = _features([_eval_image(tmp_path / "gen" / f"{pair_id(s, t)}.png") for s, t in pairs], v2_networks)
    names = (v2_root / "train.lst").read_text().split()
    ref = _features([_eval_image(v2_root / "train_highres" / n) for n in names], v2_networks)

    kid = kid_features_to_metric(
        torch.from_numpy(gen["ptincv3"]), torch.from_numpy(ref["ptincv3"]),
        kid_subsets=100, kid_subset_size=12, rng_seed=2020, verbose=False,
    )  # fmt: skip
    assert v2["metrics"]["kid_ptincv3_train"] == pytest.approx(kid[KEY_METRIC_KID_MEAN], rel=1e-5, abs=1e-9)
    details = v2["metric_details"]["kid_ptincv3_train"]
    assert details["std"] == pytest.approx(kid[KEY_METRIC_KID_STD], rel=1e-5, abs=1e-9)
    assert details["subset_size"] == 12 and details["subsets"] == 100

    g, r = gen["dinov2_vitl14"], ref["dinov2_vitl14"]
    fd = frechet_distance(
        g.mean(0), np.cov(g, rowvar=False), r.mean(0), np.cov(r, rowvar=False), method="eigh"
    )
    assert v2["metrics"]["fd_dinov2_vitl14_train"] == pytest.approx(fd, rel=1e-4, abs=1e-6)
    expected = compute_prdc(r, g, nearest_k=5)
    for part in ("precision", "recall", "density", "coverage"):
        assert v2["metrics"][f"{part}_k5_dinov2_vitl14_train"] == pytest.approx(expected[part], abs=1e-12), (
            part
        )
        assert v2["metric_details"][f"{part}_k5_dinov2_vitl14_train"]["num_real"] == len(names)
        assert v2["directions"][f"{part}_k5_dinov2_vitl14_train"] == "higher"
    assert v2["directions"]["kid_ptincv3_train"] == "lower"

    # the reference features are cached with their vectors: a warm run reads them back, same numbers
    cached = {p.name.split("_")[1]: p for p in (tmp_path / "cache").glob("pgpis-v*.npz")}
    assert refstats.load(cached["ptincv3"]).vectors.shape == (len(names), 12)
    warm, _ = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path)
    assert warm["metrics"] == v2["metrics"] and all(r["cached"] for r in warm["refstats"].values())
    write_outputs(v2, rows, tmp_path / "v2.json", tmp_path / "v2.csv")  # the schema accepts the new fields
    assert "kid_ptincv3_train" in json.loads((tmp_path / "v2.json").read_text())["metric_details"]


def test_statistics_without_vectors(v2_root: Path, v2_networks: Path, tmp_path: Path) -> None:
    """A cached file without the vectors (mean and covariance only) is recomputed with them once; an
    explicit file without them (e.g. made for pgpis-v1) leaves KID unavailable, naming the file and the fix."""
    from bench.refkeys import distinct_references

    write_generated(tmp_path / "gen", v2_root, (256, 176))
    evaluate_root(v2_root, tmp_path / "gen", "pgpis-v1", tmp_path)
    (v1_file,) = (tmp_path / "cache").glob("pgpis-v1_*.npz")
    assert refstats.load(v1_file).vectors is None  # pgpis-v1 needs none: its files stay as small as before
    evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path)
    v2_file = next((tmp_path / "cache").glob("pgpis-v2_ptincv3_*.npz"))
    st = refstats.load(v2_file)
    st.vectors = None
    refstats.save(v2_file, st)
    again, _ = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path)
    assert not again["refstats"]["ptincv3"]["cached"] and again["refstats"]["dinov2_vitl14"]["cached"]
    assert refstats.load(v2_file).vectors is not None and "kid_ptincv3_train" in again["metrics"]

    out, _ = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path, refstats_files=[v1_file])
    assert "kid_ptincv3_train" not in out["metrics"] and "fid_ptincv3_train" in out["metrics"]
    reason = out["unavailable"]["kid_ptincv3_train"]
    assert str(v1_file) in reason and "pgpis refstats" in reason
    # the pipeline's shared statistics file is made under the protocol that needs the vectors
    assert (
        distinct_references(["pgpis-v1", "pgpis-v2"])[f"ptincv3-{v1_file.name.split('_set')[1][:8]}"][
            "protocol"
        ]
        == "pgpis-v2"
    )


def test_one_decode_per_image_and_one_forward_per_image_and_network(
    v2_root: Path, fake_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pgpis-v2's eight set-level and nine per-pair metrics read each image's single decode and each
    network's single pass: KID shares FID's Inception features, PRDC shares FD-DINOv2's."""
    from bench.metrics import preprocess

    write_tiny_dinov2(fake_weights / weights.WEIGHTS["dinov2_vitl14"].filename)
    seen: dict[str, list[int]] = {}

    class Counting(PoolFeatures):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.setdefault(self.name, []).append(x.shape[0])
            return super().forward(x)

    monkeypatch.setattr(networks, "build_extractor", lambda name, path: Counting(name))
    decoded: list[str] = []
    real_decode = preprocess.decode
    monkeypatch.setattr(
        preprocess, "decode", lambda path, **kw: decoded.append(str(path)) or real_decode(path, **kw)
    )
    write_generated(tmp_path / "gen", v2_root, (256, 176))
    record, _ = evaluate_root(v2_root, tmp_path / "gen", "pgpis-v2", tmp_path)
    assert not record["unavailable"] and len(record["metrics"]) == 15
    n_ref, n_pairs = len((v2_root / "train.lst").read_text().split()), 12
    assert {name: sum(rows) for name, rows in seen.items()} == {
        "ptincv3": n_ref + n_pairs,
        "dinov2_vitl14": n_ref + n_pairs,
    }
    gen_files = [p for p in decoded if "/gen/" in p]
    ref_files = [p for p in decoded if "/train_highres/" in p]
    assert len(gen_files) == len(set(gen_files)) == n_pairs and len(ref_files) == len(set(ref_files)) == n_ref
    # one decode per distinct target image (pairs are visited grouped by target, targets.py)
    targets = {
        line.split(",")[1] for line in (v2_root / "fasion-resize-pairs-test.csv").read_text().split()[1:]
    }
    gt_files = [Path(p).name for p in decoded if "/test_highres/" in p]
    assert len(gt_files) == len(set(gt_files)) and set(gt_files) == targets
