"""Pipeline tests read dvc.yaml and params.yaml through DVC itself (the stages as DVC resolves them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def resolved_stages() -> dict[str, dict]:
    """Stage name -> {"cmd", "deps", "outs"} as DVC resolves dvc.yaml with params.yaml."""
    return resolve_stages(ROOT)


def resolve_stages(root: Path) -> dict[str, dict]:
    from dvc.repo import Repo

    cwd = os.getcwd()
    os.chdir(root)  # stage names are addressed relative to the working directory
    try:
        with Repo(".", uninitialized=True) as repo:
            return {
                stage.addressing: {
                    "cmd": stage.cmd,
                    "deps": [str(d.def_path) for d in stage.deps],
                    "outs": [str(o.def_path) for o in stage.outs],
                    "metrics": [str(o.def_path) for o in stage.outs if o.metric],
                }
                for stage in repo.index.stages
                if stage.cmd
            }
    finally:
        os.chdir(cwd)
