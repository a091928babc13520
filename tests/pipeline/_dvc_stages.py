"""The stages of a DVC project as DVC itself resolves dvc.yaml with params.yaml."""

from __future__ import annotations

import os
from pathlib import Path


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
