"""Fixtures of the metric tests: random-init weights in the real file formats, a tiny dataset root.

Weight files are written once per session into a temp store and linked into each test's empty
``$TORCH_HOME/hub/checkpoints`` (the autouse fixture in tests/conftest.py sets TORCH_HOME).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _metrics_data import link_weights, write_root, write_weight_store  # noqa: E402


@pytest.fixture(scope="session")
def weight_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_weight_store(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def fake_weights(weight_store: Path) -> Path:
    """All random-init weights linked into this test's TORCH_HOME; returns the checkpoints folder."""
    return link_weights(weight_store)


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return write_root(tmp_path / "data")


@pytest.fixture
def pool_fid(monkeypatch: pytest.MonkeyPatch, fake_weights: Path) -> None:
    """Inception replaced by a 12-d pooling stand-in (weights still resolved and hashed as usual)."""
    from _metrics_data import PoolFeatures

    from bench.metrics import networks

    monkeypatch.setattr(networks, "build_extractor", lambda name, path: PoolFeatures())
