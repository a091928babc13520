"""`pgpis user-study make|score`: blinded, seeded sheets; Jab, G2R and R2G counted from the answers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _runs import COLOURS, fake_run, fake_runs
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.errors import ConfigError, DataError
from bench.report.figures import pose_image, to_uint8
from bench.report.generated import complete_pairs, expand_generated
from bench.report.user_study import StudySettings, load_key, make_study, read_answers, score_study, wilson

SIZE = (128, 88)


def _make(root: Path, runs_dir: Path, out: Path, *extra: str) -> int:
    return main(["user-study", "make", "--dataset", str(root), "--generated", str(runs_dir), "--out", str(out),
                 "--questions", "6", "--real-fake", "4", "--size", "128x88", "--no-progress", *extra])  # fmt: skip


@pytest.fixture
def study(tiny_root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "study"
    assert _make(tiny_root, fake_runs(tiny_root, tmp_path / "generated"), out) == 0
    return out


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (SIZE[1], SIZE[0])
        return np.asarray(img.convert("RGB"))


def test_every_image_is_the_one_the_key_says(study: Path, tiny_root: Path) -> None:
    key = load_key(study)
    data = DeepFashionDataset(tiny_root)
    colour_of = {tuple(c): name for name, c in COLOURS.items()}
    items = key["items"]
    best = {k: v for k, v in items.items() if v["part"] == "best"}
    blocks = {k: v for k, v in items.items() if v["part"] == "real_fake"}
    assert len(best) == 6 and len(blocks) == 3 * 2 * 4
    for item, spec in best.items():
        assert sorted(spec["options"].values()) == ["alpha", "beta", "gamma"]  # every run, once
        src = to_uint8(load_image(data.image_path(spec["source"]), SIZE))
        np.testing.assert_array_equal(_pixels(study / "images" / f"{item}_source.png"), src)
        pose = pose_image(data.keypoints(spec["target"]), SIZE)
        np.testing.assert_array_equal(_pixels(study / "images" / f"{item}_pose.png"), pose)
        for letter, label in spec["options"].items():
            assert colour_of[tuple(_pixels(study / "images" / f"{item}_{letter}.png")[0, 0])] == label
    for block in ("b1", "b2", "b3"):
        specs = {k: v for k, v in blocks.items() if v["block"] == block}
        assert len({v["run"] for v in specs.values()}) == 1
        assert sorted(v["truth"] for v in specs.values()) == ["generated"] * 4 + ["real"] * 4
        targets = [v["pair"].split("_2_")[1] for v in specs.values()]
        assert len(set(targets)) == 8  # no target shown twice in a block, real or generated
        for item, spec in specs.items():
            pixels = _pixels(study / "images" / f"{item}.png")
            if spec["truth"] == "real":
                np.testing.assert_array_equal(
                    pixels, to_uint8(load_image(data.image_path(spec["image"]), SIZE))
                )
            else:
                assert colour_of[tuple(pixels[0, 0])] == spec["run"]
    assert sorted({v["run"] for v in blocks.values()}) == ["alpha", "beta", "gamma"]
    images = {p.name for p in (study / "images").iterdir()}
    assert len(images) == 6 * 5 + 24


def test_the_participants_files_name_no_run_and_no_pair(study: Path) -> None:
    key = load_key(study)
    page = (study / "index.html").read_text()
    sheet = (study / "answers.csv").read_text()
    for secret in [
        *key["runs"],
        *key["runs"].values(),
        *(v["pair"] for v in key["items"].values()),
        "real",
        "generated",
    ]:
        assert secret not in sheet
        if secret not in ("real", "generated"):  # the instructions say "real photo" / "generated"
            assert secret not in page, secret
    rows = list(csv.reader(sheet.splitlines()))
    assert rows[0] == ["item", "answer"] and [r[0] for r in rows[1:]] == list(key["items"])
    for item in key["items"]:
        assert f"images/{item}" in page


def test_the_same_seed_makes_the_same_study(tiny_root: Path, tmp_path: Path, study: Path) -> None:
    runs_dir = tmp_path / "generated"
    again, other = tmp_path / "again", tmp_path / "other"
    assert _make(tiny_root, runs_dir, again) == 0
    assert _make(tiny_root, runs_dir, other, "--seed", "1") == 0
    for name in ("key.json", "index.html", "answers.csv"):
        assert (study / name).read_bytes() == (again / name).read_bytes()
    for image in (study / "images").iterdir():
        assert image.read_bytes() == (again / "images" / image.name).read_bytes()
    assert load_key(other)["items"] != load_key(study)["items"]


def _answer(study: Path, path: Path, choose) -> Path:
    key = load_key(study)
    rows = [["item", "answer"]] + [[k, choose(v)] for k, v in key["items"].items()]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_scores_count_every_answer(study: Path, tmp_path: Path) -> None:
    def letter_of(spec: dict, label: str) -> str:
        return next(k for k, v in spec["options"].items() if v == label)

    # Participant 1 always picks beta and sees through part 2; participant 2 answers "real" to all and
    # picks alpha; participant 3 leaves everything blank.
    truthful = _answer(
        study,
        tmp_path / "p1.csv",
        lambda s: letter_of(s, "beta") if s["part"] == "best" else s["truth"][0].upper(),
    )
    gullible = _answer(
        study, tmp_path / "p2.csv", lambda s: letter_of(s, "alpha").lower() if s["part"] == "best" else "real"
    )
    blank = _answer(study, tmp_path / "p3.csv", lambda s: "")  # fmt: skip
    scores = score_study(load_key(study), [truthful, gullible, blank])
    runs = scores["runs"]
    assert runs["beta"]["user_jab"] == {"value": 0.5, "count": 6, "n": 12, "ci95": wilson(6, 12)}
    assert runs["alpha"]["user_jab"]["value"] == 0.5 and runs["gamma"]["user_jab"]["count"] == 0
    for label in ("alpha", "beta", "gamma"):
        assert runs[label]["user_g2r"] | {"ci95": None} == {"value": 0.5, "count": 4, "n": 8, "ci95": None}
        assert runs[label]["user_r2g"]["count"] == 0 and runs[label]["user_r2g"]["n"] == 8
    assert [p["answered"] for p in scores["participants"]] == [30, 30, 0]
    assert [p["unanswered"] for p in scores["participants"]] == [0, 0, 30]


def test_wilson_interval_matches_scipy() -> None:
    from scipy.stats import binomtest

    for k, n in [(0, 5), (3, 7), (12, 12), (40, 97), (1, 1000)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert wilson(0, 0) is None


@pytest.mark.parametrize(
    "rows, match",
    [
        ([["q01", "A"], ["q99", "A"]], r"p\.csv:3: item 'q99' is not in this study's key"),
        ([["q01", "Z"]], r"p\.csv:2: q01 answer 'Z' is not one of the options A, B, C"),
        ([["b1_01", "maybe"]], r"p\.csv:2: b1_01 answer 'MAYBE' must be R \(real\) or G"),
        ([["q01", "A"], ["q01", "B"]], r"p\.csv:3: item 'q01' is answered twice"),
    ],
)
def test_a_bad_sheet_is_refused_with_its_line(study: Path, tmp_path: Path, rows: list, match: str) -> None:
    path = tmp_path / "p.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["item", "answer"], *rows])
    with pytest.raises(DataError, match=match):
        read_answers(path, load_key(study)["items"])


def _score_args(study: Path, sheet: Path, out: Path) -> list[str]:
    return ["user-study", "score", "--study", str(study), "--answers", str(sheet), "--out", str(out)]


def test_score_cli_writes_json_and_markdown(study: Path, tmp_path: Path, capsys) -> None:
    sheet = _answer(study, tmp_path / "p.csv", lambda s: "A" if s["part"] == "best" else "G")
    out, md = tmp_path / "scores.json", tmp_path / "scores.md"
    args = [*_score_args(study, sheet, out), "--md", str(md)]
    assert main(args) == 0
    assert json.loads(out.read_text())["runs"].keys() == {"alpha", "beta", "gamma"}
    assert "| Run | Jab ↑ | G2R ↑ | R2G ↑ |" in md.read_text()
    (tmp_path / "bad.csv").write_text("question;reply\nq01;A\n")
    assert main([*args[:5], str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.json")]) == 2
    assert "needs the header 'item,answer'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_score_logs_to_mlflow(study: Path, tmp_path: Path) -> None:
    import mlflow

    sheet = _answer(study, tmp_path / "p.csv", lambda s: "B" if s["part"] == "best" else "R")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = _score_args(study, sheet, tmp_path / "s.json")
    assert main([*args, "--mlflow", uri]) == 0
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["pgpis-bench"])
    assert sorted(found["tags.mlflow.runName"]) == ["user-study/alpha", "user-study/beta", "user-study/gamma"]
    assert set(found["metrics.user_g2r"]) == {1.0} and set(found["metrics.user_r2g"]) == {0.0}
    assert found["metrics.user_jab"].sum() == pytest.approx(1.0)


def test_an_existing_study_is_never_lost(tiny_root: Path, tmp_path: Path, study: Path, capsys) -> None:
    runs_dir = tmp_path / "generated"
    before = (study / "key.json").read_bytes()
    assert _make(tiny_root, runs_dir, study, "--seed", "5") == 2
    assert "its key.json is what scores the answers" in capsys.readouterr().err
    assert (study / "key.json").read_bytes() == before
    # A failure half-way (corrupt generated images, met after other images were written) leaves the old
    # study whole and no temporary folder.
    for victim in (runs_dir / "gamma").glob("*.png"):
        victim.write_bytes(b"not a png")
    assert _make(tiny_root, runs_dir, study, "--seed", "5", "--overwrite") == 2
    assert "corrupt" in capsys.readouterr().err
    assert (study / "key.json").read_bytes() == before
    assert sorted(p.name for p in study.parent.iterdir() if p.name.startswith(".")) == []
    fake_run(tiny_root, tmp_path / "fixed" / "gamma", COLOURS["gamma"])
    fixed = [str(runs_dir / "alpha"), str(runs_dir / "beta"), str(tmp_path / "fixed" / "gamma")]
    assert main(["user-study", "make", "--dataset", str(tiny_root), "--generated", *fixed, "--out", str(study),
                 "--overwrite", "--seed", "5", "--questions", "6", "--real-fake", "4", "--no-progress"]) == 0  # fmt: skip
    assert (study / "key.json").read_bytes() != before


def test_settings_that_cannot_make_a_study(tiny_root: Path, tmp_path: Path) -> None:
    data = DeepFashionDataset(tiny_root)
    one = expand_generated([fake_run(tiny_root, tmp_path / "g" / "alpha", COLOURS["alpha"])])
    usable, _ = complete_pairs(data, one)
    with pytest.raises(ConfigError, match="at least two runs"):
        make_study(data, one, usable, tmp_path / "s", StudySettings(questions=2, real_fake=2), progress=False)
    with pytest.raises(ConfigError, match="needs 26 distinct target images per run .* give 8"):
        make_study(
            data, one, usable, tmp_path / "s", StudySettings(questions=0, real_fake=13), progress=False
        )
    key = make_study(
        data, one, usable, tmp_path / "s", StudySettings(questions=0, real_fake=3, size=SIZE), progress=False
    )
    assert {v["part"] for v in key["items"].values()} == {"real_fake"}
