"""A metric from an outside package runs through `pgpis evaluate`, `pgpis report` and the README table.

The package is pip-installed with ``--target`` into a temporary folder put on PYTHONPATH of the
subprocesses (the same wheel build and ``entry_points.txt`` as a normal install, nothing left in
the shared environment). It holds one file: its function and its ``Metric`` declaration; its
pyproject adds the one registration line. Nothing in the engine names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


def _env(site: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["TQDM_DISABLE"] = "1"
    return env


def _run(args: list[str], env: dict[str, str], module: str = "bench.cli.main") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("toy-metric")
    pkg = base / "src"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "pgpis_toy_metric.py").write_text(MODULE)
    site = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), str(pkg)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return site


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

    env = _env(toy_site)
    write_generated(tmp_path / "gen", tiny_root, (256, 176))
    helped = _run(["evaluate", "--help"], env)
    assert helped.returncode == 0 and "toy_gray_agreement" in helped.stdout and "[plugin]" in helped.stdout

    out = tmp_path / "toy" / "metrics.json"
    run = _run(
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
        rep = _run(["report", "--metrics", str(out), "--out", str(md)], _env(site))
        assert rep.returncode == 0, rep.stderr
        assert f"{name} ↑" in md.read_text()

    table = _run([], env, module="bench.metrics.metrics_table")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("| `toy_gray_agreement`"))
    assert "per-pair" in row and "higher ↑" in row and "threshold=0.1" in row
    bare = _run([], _env(None), module="bench.metrics.metrics_table")
    assert "toy_gray_agreement" not in bare.stdout


def test_an_unknown_metric_is_refused_before_any_work(tiny_root: Path, tmp_path: Path) -> None:
    run = _run(
        ["evaluate", "--protocol", "pgpis-v1", "--metrics", "ssim_w52", "--images", str(tmp_path / "none"),
         "--dataset", str(tiny_root), "--out", str(tmp_path / "m.json")],
        _env(None),
    )  # fmt: skip
    assert run.returncode == 2
    assert "unknown metric 'ssim_w52'" in run.stderr and "ssim_w51" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "m.json").exists()
