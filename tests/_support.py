"""Helpers shared by tests (importable as ``_support`` thanks to ``pythonpath = ["tests"]``)."""

from __future__ import annotations

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
