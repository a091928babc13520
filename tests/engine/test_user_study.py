"""`pgpis user-study make`: the site participants get, the key kept apart, fair real/fake blocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _runs import COLOURS, fake_run, fake_runs
from _study import SIZE, copying_run, make
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.errors import ConfigError
from bench.report.figures import pose_image, to_uint8
from bench.report.generated import complete_pairs, expand_generated
from bench.report.user_study import StudySettings, key_sha256, load_key
from bench.report.user_study_plan import near_duplicate, thumbnail, wrong_option
from bench.report.user_study_site import make_study, read_site_data


@pytest.fixture
def study(tiny_root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "study"
    assert make(tiny_root, fake_runs(tiny_root, tmp_path / "generated"), out) == 0
    return out


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (SIZE[1], SIZE[0])
        return np.asarray(img.convert("RGB"))


def test_every_image_is_the_one_the_key_says(study: Path, tiny_root: Path) -> None:
    key = load_key(study)
    images = study / "site" / "images"
    data = DeepFashionDataset(tiny_root)
    colour_of = {tuple(c): name for name, c in COLOURS.items()}
    items = key["items"]
    best = {k: v for k, v in items.items() if v["part"] == "best"}
    checks = {k: v for k, v in items.items() if v["part"] == "attention"}
    blocks = {k: v for k, v in items.items() if v["part"] == "real_fake"}
    assert len(best) == 4 and len(checks) == 1 and len(blocks) == 3 * 2 * 2
    assert list(items)[:5] == [f"q{i:02d}" for i in range(1, 6)]
    for item, spec in {**best, **checks}.items():
        src = to_uint8(load_image(data.image_path(spec["source"]), SIZE))
        np.testing.assert_array_equal(_pixels(images / f"{item}_source.png"), src)
        pose = pose_image(data.keypoints(spec["target"]), SIZE)
        np.testing.assert_array_equal(_pixels(images / f"{item}_pose.png"), pose)
    for item, spec in best.items():
        assert sorted(spec["options"].values()) == ["alpha", "beta", "gamma"]  # every run, once
        for letter, label in spec["options"].items():
            assert colour_of[tuple(_pixels(images / f"{item}_{letter}.png")[0, 0])] == label
    for item, spec in checks.items():  # the real photo, and obviously wrong pictures of it
        truth = to_uint8(load_image(data.image_path(spec["target"]), SIZE))
        assert sorted(spec["options"].values()).count("real") == 1
        for letter, option in spec["options"].items():
            expected = truth if option == "real" else wrong_option(truth, option)
            np.testing.assert_array_equal(_pixels(images / f"{item}_{letter}.png"), expected)
            assert (option == "real") == (letter == spec["correct"])
    for block in ("b1", "b2", "b3"):
        specs = {k: v for k, v in blocks.items() if v["block"] == block}
        assert len({v["run"] for v in specs.values()}) == 1
        assert sorted(v["truth"] for v in specs.values()) == ["generated"] * 2 + ["real"] * 2
        generated = [v for v in specs.values() if v["truth"] == "generated"]
        taken = {v["pair"].split("_2_")[i] for v in generated for i in (0, 1)}
        for item, spec in specs.items():
            pixels = _pixels(images / f"{item}.png")
            if spec["truth"] == "real":  # a photo of another pair than the block's generated ones
                assert Path(spec["image"]).stem not in taken
                np.testing.assert_array_equal(
                    pixels, to_uint8(load_image(data.image_path(spec["image"]), SIZE))
                )
            else:
                assert colour_of[tuple(pixels[0, 0])] == spec["run"]
    assert sorted({v["run"] for v in blocks.values()}) == ["alpha", "beta", "gamma"]
    assert len(list(images.iterdir())) == 5 * 5 + 12


def test_the_site_names_no_run_pair_folder_or_method(study: Path, tmp_path: Path, tiny_root: Path) -> None:
    key = load_key(study)
    site = study / "site"
    assert sorted(p.name for p in study.iterdir()) == ["key.json", "site"]  # the key beside, not inside
    secrets = {*key["runs"], *key["runs"].values(), str(tmp_path), str(tiny_root), "copy-source"}
    for spec in key["items"].values():
        secrets |= {spec.get("pair"), spec.get("source"), spec.get("target"), spec.get("image")} - {None}
        secrets |= {Path(s).stem for s in (spec.get("source"), spec.get("image")) if s}
    for path in site.rglob("*"):
        assert not any(s in path.name for s in secrets), path
        if path.is_file():
            content = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, (path, secret)
            assert b"truth" not in content and b"attention" not in content and b"correct" not in content
    data = read_site_data(site)
    assert data["study"] == {"id": key["study_id"], "key_sha256": key_sha256(key)}
    assert [it["id"] for it in data["items"]] == list(key["items"])
    assert {it["kind"] for it in data["items"]} == {"best", "real_fake"}  # a check looks like a question
    for name in ("index.html", "study.js", "study.css"):  # self-contained: nothing fetched from elsewhere
        text = (site / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_the_same_seed_makes_the_same_study(tiny_root: Path, tmp_path: Path, study: Path) -> None:
    runs_dir = tmp_path / "generated"
    again, other = tmp_path / "again", tmp_path / "other"
    assert make(tiny_root, runs_dir, again) == 0
    assert make(tiny_root, runs_dir, other, "--seed", "1") == 0
    files = sorted(p.relative_to(study) for p in study.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (study / name).read_bytes() == (again / name).read_bytes(), name
    assert load_key(other)["items"] != load_key(study)["items"]


def test_the_key_can_be_written_elsewhere_never_into_the_site(
    tiny_root: Path, tmp_path: Path, capsys
) -> None:
    runs = fake_runs(tiny_root, tmp_path / "generated")
    key = tmp_path / "secret" / "key.json"
    assert make(tiny_root, runs, tmp_path / "s", "--key", str(key), "--study-id", "lab-2026") == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["site"]
    assert load_key(key)["study_id"] == "lab-2026"
    assert read_site_data(tmp_path / "s" / "site")["study"]["key_sha256"] == key_sha256(load_key(key))
    assert make(tiny_root, runs, tmp_path / "t", "--key", str(tmp_path / "t" / "site" / "key.json")) == 2
    assert "which make replaces whole (and whose site/ goes to participants)" in capsys.readouterr().err
    assert make(tiny_root, runs, tmp_path / "u", "--key", str(key)) == 2  # an existing key is never replaced
    assert "exists" in capsys.readouterr().err and load_key(key)["study_id"] == "lab-2026"


def test_exposure_and_exclusions_are_declared_in_the_study(tiny_root: Path, tmp_path: Path) -> None:
    runs = fake_runs(tiny_root, tmp_path / "generated")
    assert make(tiny_root, runs, tmp_path / "s") == 0
    assert read_site_data(tmp_path / "s" / "site")["exposure_ms"] == 1000  # the field's one second
    extra = ["--exposure-ms", "250", "--min-response-ms", "150", "--max-attention-failures", "1"]
    assert make(tiny_root, runs, tmp_path / "t", *extra) == 0
    assert read_site_data(tmp_path / "t" / "site")["exposure_ms"] == 250
    settings = load_key(tmp_path / "t")["settings"]
    assert (settings["min_response_ms"], settings["max_attention_failures"]) == (150, 1)


def test_a_block_never_shows_one_picture_as_real_and_as_generated(tiny_root: Path, tmp_path: Path) -> None:
    """copy-source's "generated" images are the sources' photos: none may be shown as a real photo."""
    runs = [
        fake_run(tiny_root, tmp_path / "g" / "alpha", COLOURS["alpha"]),
        copying_run(tiny_root, tmp_path / "g" / "copy"),
    ]
    out = tmp_path / "s"
    for seed in range(4):
        assert make(tiny_root, runs, out, "--seed", str(seed), "--questions", "0", "--attention-checks", "0",
                    "--overwrite") == 0  # fmt: skip
        key = load_key(out)
        shown = {k: thumbnail(_pixels(out / "site" / "images" / f"{k}.png")) for k in key["items"]}
        real = [k for k, v in key["items"].items() if v["truth"] == "real"]
        generated = [k for k, v in key["items"].items() if v["truth"] == "generated"]
        for r in real:
            for g in generated:
                assert not near_duplicate(shown[r], shown[g]), (seed, r, g)
    # the copies are near-duplicates of their photos by content, not by bytes or names
    data = DeepFashionDataset(tiny_root)
    src, tgt = data.pairs[0]
    copy = to_uint8(load_image(runs[1] / f"{Path(src).stem}_2_{Path(tgt).stem}.png", SIZE))
    photo = to_uint8(load_image(data.image_path(src), SIZE))
    assert not np.array_equal(copy, photo) and near_duplicate(thumbnail(copy), thumbnail(photo))
    other = to_uint8(load_image(data.image_path(tgt), SIZE))
    assert not near_duplicate(thumbnail(other), thumbnail(photo))


def test_an_existing_study_is_never_lost(tiny_root: Path, tmp_path: Path, study: Path, capsys) -> None:
    runs_dir = tmp_path / "generated"
    before = (study / "key.json").read_bytes()
    assert make(tiny_root, runs_dir, study, "--seed", "5") == 2
    assert "its key.json is what scores the answers" in capsys.readouterr().err
    assert (study / "key.json").read_bytes() == before
    # A failure half-way (corrupt generated images, met after other images were written) leaves the old
    # study whole and no temporary folder.
    for victim in (runs_dir / "gamma").glob("*.png"):
        victim.write_bytes(b"not a png")
    assert make(tiny_root, runs_dir, study, "--seed", "5", "--overwrite") == 2
    assert "corrupt" in capsys.readouterr().err
    assert (study / "key.json").read_bytes() == before
    assert sorted(p.name for p in study.parent.iterdir() if p.name.startswith(".")) == []
    fake_run(tiny_root, tmp_path / "fixed" / "gamma", COLOURS["gamma"])
    fixed = [runs_dir / "alpha", runs_dir / "beta", tmp_path / "fixed" / "gamma"]
    assert make(tiny_root, fixed, study, "--overwrite", "--seed", "5") == 0
    assert (study / "key.json").read_bytes() != before


def test_settings_that_cannot_make_a_study(tiny_root: Path, tmp_path: Path, capsys) -> None:
    data = DeepFashionDataset(tiny_root)
    one = expand_generated([fake_run(tiny_root, tmp_path / "g" / "alpha", COLOURS["alpha"])])
    usable, _ = complete_pairs(data, one)
    with pytest.raises(ConfigError, match="at least two runs"):
        make_study(data, one, usable, tmp_path / "s", StudySettings(questions=2, real_fake=2), progress=False)
    with pytest.raises(ConfigError, match="real photos from other pairs .* found [0-9]+ among 8 photos"):
        make_study(data, one, usable, tmp_path / "s", StudySettings(questions=0, real_fake=4), progress=False)
    with pytest.raises(ConfigError, match="exposure-ms must be between 50 and 60000"):
        make_study(
            data, one, usable, tmp_path / "s", StudySettings(questions=0, exposure_ms=10), progress=False
        )
    key = make_study(
        data, one, usable, tmp_path / "s", StudySettings(questions=0, real_fake=2, size=SIZE), progress=False
    )
    assert {v["part"] for v in key["items"].values()} == {"real_fake"}
    with pytest.raises(SystemExit):
        main(["user-study", "make", "--dataset", str(tiny_root), "--generated", str(tmp_path / "g"),
              "--out", str(tmp_path / "x"), "--questions", "-1"])  # fmt: skip
    assert "argument --questions: must be at least 0, got -1" in capsys.readouterr().err
    assert json.loads(json.dumps(key))["format"] == "pgpis-user-study/2"
