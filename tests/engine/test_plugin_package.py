"""An out-of-tree method package, built and installed by pip, runs through `pgpis` untouched.

The package is pip-installed with ``--target`` into a temporary folder put on PYTHONPATH of the
subprocesses: the same wheel build and the same ``*.dist-info/entry_points.txt`` as a normal
install, without changing the shared virtual environment (nothing to uninstall, even if a test
dies half-way).
"""

from __future__ import annotations

import json
import os
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


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = pip_install_package(tmp_path_factory.mktemp("plugin"), PYPROJECT, "pgpis_solid_plugin", MODULE)
    assert (next(site.glob("pgpis_solid_plugin-*.dist-info")) / "entry_points.txt").exists()
    return site


def test_outside_plugin_is_listed_and_generates(plugin_site: Path, tiny_root: Path, tmp_path: Path) -> None:
    env = site_env(plugin_site)
    listed = run_module(["methods", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    assert records["solid-colour"]["distribution"] == "pgpis-solid-plugin"
    assert records["solid-colour"]["error"] is None and records["copy-source"]["error"] is None

    config = tmp_path / "solid.json"
    config.write_text(json.dumps({"rgb": [0.2, 0.4, 0.6]}))
    out = tmp_path / "out"
    run = run_module(
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
    gone = run_module(
        ["generate", "--method", "solid-colour", "--dataset", str(tiny_root), "--out", str(tmp_path / "o2")],
        dict(os.environ),
    )
    assert (
        gone.returncode == 2
        and "unknown method 'solid-colour'" in gone.stderr
        and "Traceback" not in gone.stderr
    )
