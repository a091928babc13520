"""The scripts in examples/ run as a newcomer runs them (a subprocess, from the repository root), on a
micro checkpoint saved in the format of the tiny one, so they cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cfld_micro import write_micro_checkpoint
from _support import REPO
from PIL import Image


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "cfld_pose_transfer.py"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_micro_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "model", {"scheduler": "ddpm", "num_inference_steps": 2}
    )


def test_cfld_pose_transfer_example(checkpoint: Path, tmp_path: Path) -> None:
    done = _run("--checkpoint", str(checkpoint), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["person_2_pose_a_body25.png", "person_2_pose_b_coco.png",
         "person_2_fashionWOMENCardigansid0000187711_4full.png", "sheet.png"]
    )  # fmt: skip
    assert "2 sampling steps" in done.stdout and "photo cropped to columns" in done.stdout
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size == (4 * 176, 256)
        arr = np.asarray(sheet)
    assert arr[:, 176:].std() > 0  # the results are images, not blanks
    again = tmp_path / "again"
    assert _run("--checkpoint", str(checkpoint), "--out", str(again)).returncode == 0
    assert (again / "sheet.png").read_bytes() == (tmp_path / "sheet.png").read_bytes()  # seeded


def test_example_says_how_to_get_the_checkpoint(tmp_path: Path) -> None:
    done = _run("--checkpoint", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert (
        done.returncode == 2 and "dvc repro train@cfld-tiny" in done.stderr and "Traceback" not in done.stderr
    )
    assert not (tmp_path / "out").exists()
