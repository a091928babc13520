"""A metric from an outside package runs through `pgpis evaluate`, `pgpis report` and the README table.

The package is pip-installed with ``--target`` into a temporary folder put on PYTHONPATH of the
subprocesses (the same wheel build and ``entry_points.txt`` as a normal install, nothing left in
the shared environment). It holds one file: its function and its ``Metric`` declaration; its
pyproject adds the one registration line. Nothing in the engine names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _support import pip_install_package, run_module, site_env
from PIL import Image

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "pgpis-toy-metric"
version = "0.0.1"

[project.entry-points."pgpis_bench.metrics"]
toy_gray_agreement = "pgpis_toy_metric:TOY"

[tool.setuptools]
py-modules = ["pgpis_toy_metric"]
"""

MODULE = '''\
"""A per-pair metric outside the repository: the fraction of pixels whose gray levels agree."""
import torch
from bench.api import HIGHER, PER_PAIR, Metric


def gray_agreement(gt: torch.Tensor, pred: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    diff = (gt.mean(dim=1) - pred.mean(dim=1)).abs()
    return (diff < threshold).to(torch.float64).mean(dim=(1, 2))


TOY = Metric(
    "toy_gray_agreement",
    PER_PAIR,
    HIGHER,
    "fraction of pixels whose channel-mean gray levels differ by less than the threshold",
    gray_agreement,
    defaults={"threshold": 0.1},
    reference="numpy, in tests/metrics/test_metric_plugin.py",
)
'''


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install_package(tmp_path_factory.mktemp("toy-metric"), PYPROJECT, "pgpis_toy_metric", MODULE)


def _expected(root: Path, gen: Path, tgt: str) -> float:
    """The toy metric on the pad40 view, computed here with NumPy and PIL alone."""

    def pad(img: np.ndarray) -> np.ndarray:
        canvas = np.full((256, 256, 3), 255.0)
        canvas[:, 40:216] = img
        return canvas / 255.0

    gt = np.asarray(Image.open(root / "test_highres" / tgt).convert("RGB").resize((176, 256), Image.BICUBIC))
    pred = np.asarray(Image.open(gen).convert("RGB"))
    diff = np.abs(pad(gt.astype(np.float64)).mean(-1) - pad(pred.astype(np.float64)).mean(-1))
    return float((diff < 0.1).mean())


def test_toy_metric_runs_through_evaluate_report_and_the_readme_table(
    toy_site: Path, tiny_root: Path, tmp_path: Path
) -> None:
    from _metrics_data import write_generated

    from bench.data.deepfashion import pair_id, read_pairs

    env = site_env(toy_site)
    write_generated(tmp_path / "gen", tiny_root, (256, 176))
    helped = run_module(["evaluate", "--help"], env)
    assert helped.returncode == 0 and "toy_gray_agreement" in helped.stdout and "[plugin]" in helped.stdout

    out = tmp_path / "toy" / "metrics.json"
    run = run_module(
        ["evaluate", "--protocol", "pgpis-v1", "--metrics", "toy_gray_agreement@pad40", "--images",
         str(tmp_path / "gen"), "--dataset", str(tiny_root), "--out", str(out), "--per-image",
         str(tmp_path / "toy" / "per_image.csv"), "--device", "cpu", "--no-progress", "--bootstrap", "50",
         "--cache-dir", str(tmp_path / "cache")],
        env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rec = json.loads(out.read_text())
    name = "toy_gray_agreement_pad40"
    expected = [
        _expected(tiny_root, tmp_path / "gen" / f"{pair_id(s, t)}.png", t)
        for s, t in read_pairs(tiny_root / "fasion-resize-pairs-test.csv")
    ]
    assert rec["metrics"][name] == pytest.approx(np.mean(expected), abs=1e-12)
    assert name in rec["ci95"] and rec["directions"][name] == "higher"
    assert rec["protocol_settings"]["metrics"] == [name]
    assert "ssim_w51_pad40" in rec["metrics"]  # the protocol's own metrics are all still there
    assert name in (tmp_path / "toy" / "per_image.csv").read_text().splitlines()[0]

    for site in (toy_site, None):  # with the plugin installed, and read by someone without it
        md = tmp_path / f"report{site is None}.md"
        rep = run_module(["report", "--metrics", str(out), "--out", str(md)], site_env(site))
        assert rep.returncode == 0, rep.stderr
        assert f"{name} ↑" in md.read_text()

    table = run_module([], env, module="bench.metrics.metrics_table")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("| `toy_gray_agreement`"))
    assert "per-pair" in row and "higher ↑" in row and "threshold=0.1" in row
    bare = run_module([], site_env(None), module="bench.metrics.metrics_table")
    assert "toy_gray_agreement" not in bare.stdout


def test_an_unknown_metric_is_refused_before_any_work(tiny_root: Path, tmp_path: Path) -> None:
    run = run_module(
        ["evaluate", "--protocol", "pgpis-v1", "--metrics", "ssim_w52", "--images", str(tmp_path / "none"),
         "--dataset", str(tiny_root), "--out", str(tmp_path / "m.json")],
        site_env(None),
    )  # fmt: skip
    assert run.returncode == 2
    assert "unknown metric 'ssim_w52'" in run.stderr and "ssim_w51" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "m.json").exists()
