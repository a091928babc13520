"""Test-wide settings: offline, deterministic, no writes outside temp folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _support import CFLD_PARITY, SPLITS, require_shared

# Hub look-ups retry for ~23 s before failing offline; fail at once instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets an empty TORCH_HOME and its own MLflow store, so no test can read a real weight
    that happens to be cached on the machine, and nothing is written into the repository."""
    base = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("TORCH_HOME", str(base / "torch"))
    monkeypatch.setenv("HF_HOME", str(base / "hf"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{base / 'mlflow.db'}")


@pytest.fixture
def splits_dir() -> Path:
    return require_shared(SPLITS)


@pytest.fixture
def cfld_parity_dir() -> Path:
    return require_shared(CFLD_PARITY)
