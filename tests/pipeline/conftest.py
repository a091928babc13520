"""Pipeline tests read dvc.yaml and params.yaml through DVC itself (the stages as DVC resolves them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _dvc_stages import resolve_stages  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def resolved_stages() -> dict[str, dict]:
    """Stage name -> {"cmd", "deps", "outs"} as DVC resolves dvc.yaml with params.yaml."""
    return resolve_stages(ROOT)
