"""An out-of-tree method package, built and installed by pip, runs through `pgpis` untouched.

The package is pip-installed with ``--target`` into a temporary folder put on PYTHONPATH of the
subprocesses: the same wheel build and the same ``*.dist-info/entry_points.txt`` as a normal
install, without changing the shared virtual environment (nothing to uninstall, even if a test
dies half-way).
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
name = "pgpis-solid-plugin"
version = "0.0.1"

[project.entry-points."pgpis_bench.methods"]
solid-colour = "pgpis_solid_plugin:SolidColour"

[tool.setuptools]
py-modules = ["pgpis_solid_plugin"]
"""

MODULE = '''\
"""A method outside the repository: a solid colour from its config, mirrored source in one corner."""
import torch
from bench.api import InputSpec, Method, MethodInfo, PairBatch


class SolidColour(Method):
    info = MethodInfo(name="solid-colour", description="fills the image with config['rgb']")

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(image_size=(64, 44))

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        rgb = torch.tensor(self.config.get("rgb", [1.0, 0.0, 0.0]), dtype=torch.float32)
        out = rgb.view(1, 3, 1, 1).expand(len(batch), 3, 64, 44).clone()
        out[:, :, :8, :8] = batch.source_image.flip(-1)[:, :, :8, :8]
        return out
'''


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["TQDM_DISABLE"] = "1"
    return env


def _pgpis(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli.main", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("plugin")
    pkg = base / "src"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "pgpis_solid_plugin.py").write_text(MODULE)
    site = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), str(pkg)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (next(site.glob("pgpis_solid_plugin-*.dist-info")) / "entry_points.txt").exists()
    return site


def test_outside_plugin_is_listed_and_generates(plugin_site: Path, tiny_root: Path, tmp_path: Path) -> None:
    env = _env(plugin_site)
    listed = _pgpis(["methods", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    assert records["solid-colour"]["distribution"] == "pgpis-solid-plugin"
    assert records["solid-colour"]["error"] is None and records["copy-source"]["error"] is None

    config = tmp_path / "solid.json"
    config.write_text(json.dumps({"rgb": [0.2, 0.4, 0.6]}))
    out = tmp_path / "out"
    run = _pgpis(
        ["generate", "--method", "solid-colour", "--config", str(config), "--dataset", str(tiny_root),
         "--out", str(out), "--limit", "4", "--size", "64x44", "--batch-size", "3"],
        env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    files = sorted(out.glob("*.png"))
    assert len(files) == 4
    for f in files:
        img = np.asarray(Image.open(f))
        assert img.shape == (64, 44, 3)
        assert (img[8:, 8:] == np.array([51, 102, 153], np.uint8)).all()  # round(0.2*255), ...
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["method"] == {"method": "solid-colour", "config": {"rgb": [0.2, 0.4, 0.6]}}

    # Without the package on the path the method is unknown, with a clear error and exit code 2.
    gone = _pgpis(
        ["generate", "--method", "solid-colour", "--dataset", str(tiny_root), "--out", str(tmp_path / "o2")],
        dict(os.environ),
    )
    assert (
        gone.returncode == 2
        and "unknown method 'solid-colour'" in gone.stderr
        and "Traceback" not in gone.stderr
    )
