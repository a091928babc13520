"""Fixtures of the fault-injection tests: one tiny synthetic dataset per session, made in tmp."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _faults import TINY_SYNTH  # noqa: E402


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic dataset root (read-only by convention: tests copy it before changing it)."""
    from bench.data.synth import SynthSettings, synthesize

    root = tmp_path_factory.mktemp("faults") / "synthetic"
    synthesize(root, SynthSettings(**TINY_SYNTH))
    return root
