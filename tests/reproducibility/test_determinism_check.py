"""scripts/determinism_check.py: a shortened tiny-CFLD run trained and sampled twice, the second time
beside CPU-hogging processes, gives byte-identical checkpoints and images (slow: ~5 minutes on 2 cores)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_training_and_sampling_do_not_depend_on_the_machines_load(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "scripts/determinism_check.py",
            "--steps",
            "3",
            "--pairs",
            "2",
            "--work",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical: all" in done.stdout
    assert (tmp_path / "loaded" / "train" / "model" / "model.safetensors").is_file()
