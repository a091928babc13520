"""`accelerate launch` with 2 CPU processes: one gloo group, one summary, exact resume.

The CPU stand-in for multi-GPU training: the same Accelerator code path (DDP, sharded sampler,
gathered loss, per-rank RNG state in checkpoints) with the gloo backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from _cfld_micro import MICRO_TRAIN
from safetensors.torch import load_file

from bench.data.synth import SynthSettings, synthesize

ACCELERATE = Path(sys.executable).with_name("accelerate")


def _launch(config: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    # On a machine without GPUs, --multi_gpu starts torch.distributed.run with 2 processes.
    cmd = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "bench.cli.main",
           "train", "--method", "cfld", "--config", str(config), "--dataset", str(data), "--out", str(out),
           *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.mark.skipif(not ACCELERATE.exists(), reason="the accelerate launcher is not installed here")
def test_two_process_training_joins_one_group_and_resumes_exactly(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    synthesize(data, SynthSettings(train_identities=2, test_identities=1, images_per_identity=3))
    config = tmp_path / "micro.yaml"
    settings = {
        **MICRO_TRAIN,
        "batch_size": 4,  # 2 pairs per process and step
        "checkpoint_every": 2,
        "keep_checkpoints": 2,
        "ema_decay": 0.9,
        "cpu_threads": 1,
    }
    config.write_text(yaml.safe_dump(settings))

    whole = _launch(config, data, tmp_path / "whole", "--max-steps", "4")
    # One summary line: only the main process reports.
    assert whole.stdout.count("pgpis train: cfld reached step 4") == 1, whole.stdout
    ckpt = tmp_path / "whole" / "checkpoints" / "step_00000002"
    # Both ranks saved their RNG state into the same checkpoint: they were one process group
    # (two independent rank-0 processes would race on one random_states_0.pkl).
    assert sorted(p.name for p in ckpt.glob("random_states_*.pkl")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]

    _launch(config, data, tmp_path / "split", "--max-steps", "2")
    resumed = _launch(config, data, tmp_path / "split", "--max-steps", "4", "--resume")
    assert "reached step 4" in resumed.stdout
    a = load_file(tmp_path / "whole" / "model" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed 2-process run differs from the uninterrupted one"
    # The resumed run trained: its step-4 checkpoint weights differ from the step-2 ones it resumed from.
    ckpts = tmp_path / "split" / "checkpoints"
    at2 = load_file(ckpts / "step_00000002" / "model.safetensors")
    at4 = load_file(ckpts / "step_00000004" / "model.safetensors")
    assert at2.keys() == at4.keys() and any(not torch.equal(at2[k], at4[k]) for k in at2)
