"""The embedded synthetic dataset: format, determinism, and that appearance transfer matters."""

from __future__ import annotations

import hashlib
import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
from _support import REPO
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.cli.main import main
from bench.data.deepfashion import FLAT_NAME_RE, DeepFashionDataset, read_annotations, read_list
from bench.data.synth import DEFAULT_POSES, SynthSettings, load_pose_pool, plan, synthesize
from bench.data.synth_render import render_person
from bench.errors import ConfigError

SMALL = SynthSettings(seed=3, train_identities=3, test_identities=2, images_per_identity=3, size=(128, 88))
POSES_SHA256 = "9590e7dff992c01cfdcc16dab268e18c4f84424730f0fc2a6d07150c6551f399"


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "ds"
    synthesize(root, SMALL)
    return root


def test_embedded_pose_file_is_the_documented_one(splits_dir):
    data = DEFAULT_POSES.read_bytes()
    assert hashlib.sha256(data).hexdigest() == POSES_SHA256
    assert data == (splits_dir / "fasion-resize-annotation-test.csv").read_bytes()
    assert POSES_SHA256 in (REPO / "datasets" / "poses" / "CARD.md").read_text()
    pool = load_pose_pool()
    assert len(pool) == 3264  # images with keypoints 2, 5, 8, 11 visible (deepfashion.md §5)


def test_layout_and_format(small_root):
    assert sorted(p.name for p in small_root.iterdir()) == sorted(
        [
            "DATASET.json", "fasion-resize-annotation-test.csv", "fasion-resize-annotation-train.csv",
            "fasion-resize-pairs-test.csv", "fasion-resize-pairs-train.csv", "test.lst", "train.lst",
            "test_highres", "train_highres",
        ]
    )  # fmt: skip
    info = json.loads((small_root / "DATASET.json").read_text())
    assert info["seed"] == 3 and info["settings"]["size"] == [128, 88]
    assert info["counts"]["test"] == {"identities": 2, "images": 6, "pairs": 12}
    assert info["counts"]["train"] == {"identities": 3, "images": 9, "pairs": 18}
    # Original writer's form: a space after each colon.
    ann_text = (small_root / "fasion-resize-annotation-test.csv").read_text()
    assert ann_text.splitlines()[1].split(":")[1].startswith(" [")
    real = {kps.tobytes() for kps in read_annotations(DEFAULT_POSES).values()}
    groups = {}
    for split in ("train", "test"):
        ds = DeepFashionDataset(small_root, split)
        ds.validate(decode=True)
        names = read_list(small_root / f"{split}.lst")
        assert set(names) == set(ds.annotations)
        for name in names:
            m = FLAT_NAME_RE.match(name)
            assert m and m.group(3).startswith("9"), name  # invented ids cannot collide with real ones
            groups.setdefault(split, {}).setdefault(m.group(3), []).append(name)
            kps = ds.annotations[name]
            assert kps.tobytes() in real  # a real pose, unchanged
            assert (kps[[2, 5, 8, 11], 0] >= 0).all()
            with Image.open(ds.image_path(name)) as im:
                assert im.format == "JPEG" and im.size == (88, 128) and im.mode == "RGB"
        expected = {pair for group in groups[split].values() for pair in permutations(group, 2)}
        assert set(ds.pairs) == expected and len(ds.pairs) == len(expected)
    assert not set(groups["train"]) & set(groups["test"])  # disjoint identities


def test_byte_identical_for_the_same_seed(small_root, tmp_path):
    again = tmp_path / "again"
    synthesize(again, SMALL)
    assert tree_digest(again) == tree_digest(small_root)
    other = tmp_path / "other"
    synthesize(other, SynthSettings(**{**SMALL.__dict__, "seed": 4}))
    assert tree_digest(other)["test.lst"] != tree_digest(small_root)["test.lst"]


def test_test_split_does_not_depend_on_the_train_size(small_root, tmp_path):
    """More training persons (params.yaml's train-identities) leave the test files byte-identical,
    so scores of runs trained on different train sizes are on the same test images."""
    bigger = tmp_path / "bigger"
    synthesize(bigger, SynthSettings(**{**SMALL.__dict__, "train_identities": 7}))
    small, big = tree_digest(small_root), tree_digest(bigger)

    def test_split(files: dict[str, str]) -> set[str]:
        return {k for k in files if k.startswith("test") or "-test." in k}

    test_files = test_split(small)
    assert test_files == test_split(big)
    assert {"test.lst", "fasion-resize-pairs-test.csv", "fasion-resize-annotation-test.csv"} <= test_files
    assert any(k.startswith("test_highres/") for k in test_files)
    assert all(small[k] == big[k] for k in test_files)
    assert small["train.lst"] != big["train.lst"]


def test_rendering_the_target_beats_copying_the_source(tmp_path):
    """The task needs appearance transfer: the source identity re-drawn at the target pose is far closer
    to the real target than the source image is."""
    settings = SynthSettings(seed=0, train_identities=1, test_identities=8, images_per_identity=3)
    root = tmp_path / "ds"
    synthesize(root, settings)
    people = [p for p in plan(settings, load_pose_pool()) if p.split == "test"]
    scores = {"copy": [], "render": []}
    for person in people:
        for src in person.images:
            src_img = np.asarray(Image.open(root / "test_highres" / src.name))
            for tgt in person.images:
                if tgt is src:
                    continue
                real = np.asarray(Image.open(root / "test_highres" / tgt.name))
                # Only what a method knows: the source's identity and background, the target keypoints.
                guess = render_person(person.identity, tgt.keypoints, settings.size, src.background)
                for key, img in (("copy", src_img), ("render", guess)):
                    ssim = structural_similarity(real, img, channel_axis=2, data_range=255)
                    scores[key].append((ssim, peak_signal_noise_ratio(real, img, data_range=255)))
    copy, render = np.mean(scores["copy"], axis=0), np.mean(scores["render"], axis=0)
    print(f"copy SSIM {copy[0]:.3f} PSNR {copy[1]:.2f}; render SSIM {render[0]:.3f} PSNR {render[1]:.2f}")
    assert len(scores["copy"]) == 48
    assert render[0] > copy[0] + 0.15
    assert render[1] > copy[1] + 8.0


def test_refuses_a_folder_with_other_settings_and_keeps_it(small_root, tmp_path):
    before = tree_digest(small_root)
    with pytest.raises(ConfigError, match="different settings"):
        synthesize(small_root, SynthSettings(**{**SMALL.__dict__, "test_identities": 3}))
    assert tree_digest(small_root) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a synthetic dataset"):
        synthesize(foreign, SMALL)
    assert (foreign / "notes.txt").read_text() == "mine"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_same_settings_rebuild_in_place(small_root):
    before = tree_digest(small_root)
    (small_root / "test_highres" / read_list(small_root / "test.lst")[0]).unlink()  # a damaged copy
    synthesize(small_root, SMALL)
    assert tree_digest(small_root) == before


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["synth", "--out", str(out), "--seed", "3", "--train-identities", "3", "--test-identities", "2"]
    assert main([*args, "--images-per-identity", "3", "--size", "128x88"]) == 0
    assert "test 6 images / 12 pairs" in capsys.readouterr().out
    assert main([*args, "--images-per-identity", "1"]) == 2
    assert "images-per-identity" in capsys.readouterr().err
    assert main([*args, "--images-per-identity", "4", "--size", "128x88"]) == 2
    assert "different settings" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path / "x"), "--poses", str(tmp_path / "none.csv")]) == 2
    assert "pose file not found" in capsys.readouterr().err


def test_cli_defaults_are_the_settings_defaults():
    """`pgpis synth`'s option defaults repeat SynthSettings' (the CLI does not import the generator,
    which pulls numpy and PIL into every `pgpis` start); they must not drift apart."""
    import argparse

    from bench.cli.synth import add_synth_arguments

    parser = argparse.ArgumentParser()
    add_synth_arguments(parser)
    args = parser.parse_args(["--out", "x"])
    defaults = SynthSettings()
    for name in ("seed", "train_identities", "test_identities", "images_per_identity", "jpeg_quality"):
        assert getattr(args, name) == getattr(defaults, name), name
    assert tuple(args.size) == defaults.size


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--help"])
    assert exc.value.code == 0
    assert "DeepFashion's on-disk format" in capsys.readouterr().out


def test_fetch_synthetic_is_synth(small_root, tmp_path):
    """The pipeline's first stage (`pgpis fetch synthetic`) writes exactly what `pgpis synth` writes."""
    out = tmp_path / "fetched"
    args = ["--seed", "3", "--train-identities", "3", "--test-identities", "2", "--images-per-identity", "3"]
    assert main(["fetch", "synthetic", "--out", str(out), *args, "--size", "128x88"]) == 0
    assert tree_digest(out) == tree_digest(small_root)
