"""Fixtures of the engine tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _engine_data import write_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 identities x 4 poses = 24 test pairs (read-only: tests write outputs elsewhere)."""
    return write_dataset(tmp_path_factory.mktemp("tiny") / "root")
