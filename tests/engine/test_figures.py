"""`pgpis figures`: the comparison grid shows the right image in every cell; the metrics chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _runs import COLOURS, fake_run, fake_runs
from PIL import Image
from test_report import metrics_file

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.errors import ConfigError, DataError
from bench.report.figures import (
    HEADER,
    PAD,
    best_and_worst,
    chart_metrics,
    metrics_chart,
    pose_image,
    to_uint8,
)
from bench.report.generated import choose_pairs, complete_pairs, distinct_pairs, expand_generated
from bench.report.results import load_runs
from bench.report.tables import build_table


def _cell(grid: np.ndarray, row: int, col: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    top, left = HEADER + row * (h + PAD), PAD + col * (w + PAD)
    return grid[top : top + h, left : left + w]


def test_every_cell_of_the_grid_holds_its_image(tiny_root: Path, tmp_path: Path) -> None:
    runs_dir = fake_runs(tiny_root, tmp_path / "generated")
    out = tmp_path / "figs"
    size = (128, 88)
    code = main(["figures", "--dataset", str(tiny_root), "--generated", str(runs_dir), "--out", str(out),
                 "--num-pairs", "3", "--size", "128x88", "--no-progress"])  # fmt: skip
    assert code == 0
    info = json.loads((out / "comparison.json").read_text())
    assert info["columns"] == ["source", "target pose", "ground truth", "alpha", "beta", "gamma"]
    grid = np.asarray(Image.open(out / "comparison.png").convert("RGB"))
    assert grid.shape == (HEADER + 3 * (size[0] + PAD), PAD + 6 * (size[1] + PAD), 3)
    data = DeepFashionDataset(tiny_root)
    by_id = {p.pid: p for p in distinct_pairs(data)}
    assert len(info["rows"]) == 3
    for row, pid in enumerate(info["rows"]):
        pair = by_id[pid]
        expect = [
            to_uint8(load_image(data.image_path(pair.source), size)),
            pose_image(data.keypoints(pair.target), size),
            to_uint8(load_image(data.image_path(pair.target), size)),
            *(np.full((*size, 3), COLOURS[name], np.uint8) for name in ("alpha", "beta", "gamma")),
        ]
        for col, want in enumerate(expect):
            np.testing.assert_array_equal(
                _cell(grid, row, col, size), want, err_msg=f"row {row} column {col}"
            )
    # The source and the target differ within a pair (the grid is not showing one image twice).
    assert not np.array_equal(_cell(grid, 0, 0, size), _cell(grid, 0, 2, size))


def test_pairs_are_a_seeded_choice_in_file_order_or_the_named_ones(tiny_root: Path, tmp_path: Path) -> None:
    data = DeepFashionDataset(tiny_root)
    runs = expand_generated([fake_runs(tiny_root, tmp_path / "g")])
    usable, left_out = complete_pairs(data, runs)
    assert left_out == 0 and len(usable) == 24
    first = choose_pairs(usable, 5, seed=0)
    assert first == choose_pairs(usable, 5, seed=0)
    assert first != choose_pairs(usable, 5, seed=1)
    order = [p.pid for p in usable]
    assert [order.index(p.pid) for p in first] == sorted(order.index(p.pid) for p in first)
    named = [usable[7].pid, usable[2].pid]
    assert [p.pid for p in choose_pairs(usable, 5, 0, named)] == named
    with pytest.raises(ConfigError, match="nope_2_nada"):
        choose_pairs(usable, 5, 0, ["nope_2_nada"])
    with pytest.raises(ConfigError, match="only 24 test pairs"):
        choose_pairs(usable, 25, 0)


def test_an_incomplete_run_is_refused_unless_allowed(tiny_root: Path, tmp_path: Path) -> None:
    data = DeepFashionDataset(tiny_root)
    fake_run(tiny_root, tmp_path / "g" / "alpha", COLOURS["alpha"])
    fake_run(tiny_root, tmp_path / "g" / "beta", COLOURS["beta"], skip=3)
    runs = expand_generated([tmp_path / "g"])
    with pytest.raises(DataError, match=r"beta: 3 of 24 images missing .*--allow-missing"):
        complete_pairs(data, runs)
    usable, left_out = complete_pairs(data, runs, allow_missing=True)
    assert (len(usable), left_out) == (21, 3)
    assert all((tmp_path / "g" / "beta" / f"{p.pid}.png").is_file() for p in usable)


def test_run_folders_and_labels(tiny_root: Path, tmp_path: Path) -> None:
    parent = fake_runs(tiny_root, tmp_path / "g", ("alpha", "beta"))
    assert [r.label for r in expand_generated([parent])] == ["alpha", "beta"]
    assert [r.label for r in expand_generated([parent / "beta", parent / "alpha"], ["B", "A"])] == ["B", "A"]
    with pytest.raises(ConfigError, match="unique"):
        expand_generated([parent / "alpha", parent / "alpha"])
    with pytest.raises(ConfigError, match="1 label"):
        expand_generated([parent], ["one"])
    with pytest.raises(DataError, match="not found"):
        expand_generated([tmp_path / "absent"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither generated PNGs"):
        expand_generated([tmp_path / "empty"])


def test_metrics_chart_draws_shared_metrics_and_names_the_rest(tmp_path: Path) -> None:
    paths = [
        metrics_file(tmp_path, "a", ssim_w51=0.5, psnr=12.0, fid_ptincv3_train=None),
        metrics_file(tmp_path, "b", ssim_w51=0.7, psnr=14.0, fid_ptincv3_train=None),
    ]
    runs = load_runs(paths)
    shown, left_out = chart_metrics(build_table(runs))
    assert shown == ["ssim_w51", "psnr"]
    assert list(left_out) == ["fid_ptincv3_train"] and "weight pt_inception" in left_out["fid_ptincv3_train"]
    png = metrics_chart(runs)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert metrics_chart(load_runs(paths)) == png  # no date or version in the file: same bytes
    mixed = metrics_file(tmp_path, "c", protocol="cfld-256", ssim_w51=0.6)
    with pytest.raises(ConfigError, match="different protocols"):
        metrics_chart(load_runs([*paths, mixed]))


def test_bad_metrics_fail_before_any_figure_is_written(tiny_root: Path, tmp_path: Path, capsys) -> None:
    runs_dir = fake_runs(tiny_root, tmp_path / "g", ("alpha", "beta"))
    a = metrics_file(tmp_path / "m", "a", ssim_w51=0.5)
    b = tmp_path / "m" / "b.json"
    b.write_text("{broken")
    out = tmp_path / "figs"
    code = main(["figures", "--dataset", str(tiny_root), "--generated", str(runs_dir), "--out", str(out),
                 "--metrics", str(a), str(b), "--no-progress"])  # fmt: skip
    assert code == 2
    assert "not a readable metrics JSON file" in capsys.readouterr().err
    assert not out.exists()


def test_one_chart_per_protocol_and_a_gallery_of_each_runs_best_and_worst_pairs(
    tiny_root: Path, tmp_path: Path
) -> None:
    runs_dir = fake_runs(tiny_root, tmp_path / "g", ("alpha", "beta"))
    metrics = [
        metrics_file(tmp_path / "m", f"{run}@{protocol}", protocol=protocol, ssim_w51=v)
        for protocol in ("pgpis-v1", "cfld-256")
        for run, v in (("alpha", 0.5), ("beta", 0.6))
    ]
    pids = [p.pid for p in distinct_pairs(DeepFashionDataset(tiny_root))]
    scores = tmp_path / "per_image" / "pgpis-v1"
    scores.mkdir(parents=True)
    for run in ("alpha", "beta"):
        rows = [f"{pid},{i / 10 if run == 'alpha' else 1 - i / 10}" for i, pid in enumerate(pids)]
        (scores / f"{run}.csv").write_text("pair_id,ssim_g15_dr\n" + "\n".join(rows) + "\n")
    out = tmp_path / "figs"
    size = (64, 44)
    code = main(["figures", "--dataset", str(tiny_root), "--generated", str(runs_dir), "--out", str(out),
                 "--metrics", *map(str, metrics), "--per-image", str(tmp_path / "per_image"),
                 "--gallery-protocol", "pgpis-v1", "--gallery-pairs", "2", "--size", "64x44", "--no-progress"])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [
        "comparison.png",
        "gallery_alpha.png",
        "gallery_beta.png",
        "metrics_cfld-256.png",
        "metrics_pgpis-v1.png",
    ]
    # alpha's best pairs (highest SSIM) are the last of the file, its worst the first.
    assert best_and_worst([(pid, i / 10) for i, pid in enumerate(pids)], "ssim_g15_dr", 2) == [
        ("best 1", pids[-1], (len(pids) - 1) / 10),
        ("best 2", pids[-2], (len(pids) - 2) / 10),
        ("worst 1", pids[0], 0.0),
        ("worst 2", pids[1], 0.1),
    ]
    assert best_and_worst([("a", 0.2), ("b", 0.1)], "lpips_alex_v0.1", 1) == [
        ("best 1", "b", 0.1),
        ("worst 1", "a", 0.2),
    ]
    gallery = np.asarray(Image.open(out / "gallery_alpha.png").convert("RGB"))
    h, w = size
    row_h = HEADER + h + PAD
    assert gallery.shape == (HEADER + 4 * row_h, PAD + 4 * (w + PAD), 3)
    data = DeepFashionDataset(tiny_root)
    by_id = {p.pid: p for p in distinct_pairs(data)}
    for row, pid in enumerate([pids[-1], pids[-2], pids[0], pids[1]]):
        top = HEADER + row * row_h + HEADER
        truth = gallery[top : top + h, PAD + 2 * (w + PAD) : PAD + 2 * (w + PAD) + w]
        np.testing.assert_array_equal(truth, to_uint8(load_image(data.image_path(by_id[pid].target), size)))
        generated = gallery[top : top + h, PAD + 3 * (w + PAD) : PAD + 3 * (w + PAD) + w]
        np.testing.assert_array_equal(generated, np.full((*size, 3), COLOURS["alpha"], np.uint8))
