"""Helpers shared by tests (importable as ``_support`` thanks to ``pythonpath = ["tests"]``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPLITS = SHARED / "data" / "deepfashion-splits"
CFLD_PARITY = SHARED / "reference" / "cfld-parity"


def require_shared(path: Path) -> Path:
    """Skip (with the reason) when the ../shared reference folder is absent, as on a user's machine."""
    if not path.exists():
        pytest.skip(f"reference file {path} is absent (only CI and developer machines have ../shared)")
    return path


def pip_install_package(base: Path, pyproject: str, module_name: str, module_source: str) -> Path:
    """Build and install a one-module package (its pyproject and source) with pip into a site folder
    of its own under ``base``, the same wheel build and dist-info as a normal install; returns it."""
    pkg = base / "src"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(pyproject)
    (pkg / f"{module_name}.py").write_text(module_source)
    site = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), str(pkg)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return site


def site_env(site: Path | None) -> dict[str, str]:
    """This environment with ``site`` first on PYTHONPATH (none: unchanged) and no progress bars."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["TQDM_DISABLE"] = "1"
    return env


def run_module(
    args: list[str], env: dict[str, str], module: str = "bench.cli.main"
) -> subprocess.CompletedProcess:
    """``python -m module args`` in a fresh process with ``env``, output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, timeout=300
    )
