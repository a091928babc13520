"""The real-data profile (params-deepfashion.yaml) drives the whole pipeline: checked as written, then
run end to end on CPU with a tiny DeepFashion-format root, a tiny random CFLD checkpoint and a tiny
PIDM release, only the paths, the device and the counts changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _dvc_stages import resolve_stages

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))


def profile() -> dict:
    return yaml.safe_load((ROOT / "params-deepfashion.yaml").read_text(encoding="utf-8"))


def _project(tmp_path: Path, params: dict) -> Path:
    """A git+DVC project with our dvc.yaml, the code its stages list as deps, and ``params``."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("bench", "methods"):
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "datasets" / "poses", project / "datasets" / "poses")
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _sh(project, "git", "init", "-q")
    _sh(project, sys.executable, "-m", "dvc", "init", "-q")
    return project


def _sh(cwd: Path, *argv: str, timeout: int = 900) -> str:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_profile_as_written_is_the_real_benchmark_without_training(tmp_path: Path) -> None:
    p = profile()
    assert p["dataset"]["source"] == "deepfashion" and "images" in p["dataset"]["options"]
    assert p["train"] == {} and p["generate"]["device"] == "cuda"
    assert p["evaluate"]["protocols"] == ["pgpis-v1", "cfld-256", "pidm"]
    assert p["runs"]["cfld-released"]["options"]["checkpoint"] == "checkpoints/cfld-official"
    stages = resolve_stages(_project(tmp_path, p))
    assert not [s for s in stages if s.startswith("train")]  # no tiny-CFLD training in this profile
    assert stages["data"]["cmd"].startswith("pgpis fetch deepfashion --out datasets/deepfashion --images ")
    for run in p["runs"]:
        assert "--device cuda" in stages[f"generate@{run}"]["cmd"]
    assert "releases/PIDM.zip" in stages["generate@pidm-released"]["deps"]
    assert len([s for s in stages if s.startswith("evaluate@")]) == len(p["runs"]) * 3


def _tiny_deepfashion(root: Path) -> None:
    from _engine_data import write_dataset

    write_dataset(root)
    shutil.copytree(root / "test_highres", root / "train_highres")
    for kind in ("lst", "annotation", "pairs"):
        src = {
            "lst": "test.lst",
            "annotation": "fasion-resize-annotation-test.csv",
            "pairs": "fasion-resize-pairs-test.csv",
        }[kind]
        shutil.copy(root / src, root / src.replace("test", "train"))


def _tiny_cfld(folder: Path) -> None:
    import torch
    from _cfld_micro import MICRO_MODEL

    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel
    from methods.cfld.train import save_final
    from methods.cfld.train_settings import TrainSettings
    from methods.cfld.vae import PixelCodec

    torch.manual_seed(0)
    settings = TrainSettings.from_dict({"sampling": {"scheduler": "ddim", "num_inference_steps": 2}})
    save_final(CFLDModel(CFLDConfig.from_dict(MICRO_MODEL)), PixelCodec(2), settings, folder, {"steps": 0})


def _tiny_pidm_release(root: Path, release: Path) -> None:
    import numpy as np
    from PIL import Image

    release.mkdir(parents=True)
    pairs = (root / "fasion-resize-pairs-test.csv").read_text().split()[1:]
    for i, line in enumerate(pairs):
        src, tgt = (Path(n).stem for n in line.split(","))
        Image.fromarray(np.full((256, 256, 3), 10 * i % 250, np.uint8)).save(
            release / f"{src}_2_{tgt}_vis.png"
        )


@pytest.mark.slow  # ~20 `pgpis` processes (each imports torch): 3-10 minutes on 2 busy cores
@pytest.mark.timeout(1800)
def test_profile_runs_end_to_end_on_cpu_with_tiny_inputs(tmp_path: Path) -> None:
    p = profile()
    # Only what cannot exist here changes: the device, the paths of the inputs, and the counts that
    # a 24-pair dataset cannot fill.
    p["generate"]["device"] = "cpu"
    p["evaluate"]["options"].update({"bootstrap": 10, "workers": 0})
    p["figures"].update({"num-pairs": 2, "gallery-pairs": 1})
    p["user_study"].update({"questions": 2, "real-fake": 2})
    project = _project(tmp_path, p)
    root = project / p["dataset"]["root"]
    _tiny_deepfashion(root)
    _tiny_cfld(project / p["runs"]["cfld-released"]["needs"])
    _tiny_pidm_release(root, project / "releases" / "PIDM")
    p["runs"]["pidm-released"].update(
        needs="releases/PIDM",
        options={**p["runs"]["pidm-released"]["options"], "checkpoint": "releases/PIDM"},
    )
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    # The data stage downloads DeepFashion's split files (online); the tiny root stands in for its output.
    _sh(project, sys.executable, "-m", "dvc", "commit", "-f", "data")
    _sh(project, sys.executable, "-m", "dvc", "repro")
    md = (project / "reports" / "metrics.md").read_text()
    for protocol in p["evaluate"]["protocols"]:
        assert f"## Protocol `{protocol}`" in md
        for run in p["runs"]:
            data = json.loads((project / "reports" / "metrics" / protocol / f"{run}.json").read_text())
            assert data["num_images"] == 24 and data["metrics"]["ssim_w51"] > -1
    assert "## Protocol sensitivity" in md and "**Not computed:**" in md
    # The released CFLD checkpoint run sits beside CFLD's published numbers.
    assert "| cfld-released | CFLD (256x176) | ssim_w51 | 0.7378 |" in md
    assert sorted(p.name for p in (project / "reports" / "figures").glob("gallery_*.png")) == [
        f"gallery_{run}.png" for run in sorted(p_run for p_run in p["runs"])
    ]
    status = _sh(project, sys.executable, "-m", "dvc", "status")
    assert "up to date" in status, status
