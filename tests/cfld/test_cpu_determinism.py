"""Pinned CPU kernels for reproducible training: the restart, the refusal, the flags' scope."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _cfld_micro import MICRO_TRAIN

from bench.api import ConfigError
from methods.cfld.cpu_determinism import (
    PINNED_ENV,
    check_pinned,
    deterministic_kernels,
    missing_env,
    restart_pinned,
)
from methods.cfld.train import train
from methods.cfld.train_settings import TrainSettings

REPO = Path(__file__).resolve().parents[2]


def test_restart_pinned_reexecutes_the_command_with_the_pins_and_torch_follows_them() -> None:
    code = (
        "import os, sys, torch\n"
        "from methods.cfld.cpu_determinism import restart_pinned\n"
        "sys.argv[0] = 'pgpis'  # as the command; any other process is never replaced\n"
        "print('run', os.environ.get('ATEN_CPU_CAPABILITY'), torch.backends.cpu.get_cpu_capability(), flush=True)\n"
        "restart_pinned('avx2')\n"
        "print('after', os.environ.get('MKL_CBWR'), flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV["avx2"]}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    # First the unpinned run (its output flushed before the exec), then the same code pinned, once.
    assert lines[0].startswith("run None ")
    assert lines[1:] == ["run avx2 AVX2", "after AVX2,STRICT", ""]


def test_a_process_that_is_not_the_command_is_never_replaced() -> None:
    restart_pinned("avx2")  # pytest here: returns instead of re-executing the test session
    assert missing_env("avx2")


def test_training_with_pinned_kernels_refuses_an_unpinned_process(tmp_path: Path) -> None:
    if not missing_env("avx2"):
        pytest.skip("this test process was started with the pins")
    settings = TrainSettings.from_dict({**MICRO_TRAIN, "cpu_kernels": "avx2"})
    with pytest.raises(
        ConfigError, match="cpu_kernels: avx2 needs torch started with ATEN_CPU_CAPABILITY=avx2"
    ):
        train(settings, str(tmp_path / "no-data"), tmp_path / "run", max_steps=1)
    with pytest.raises(ConfigError, match="cpu_kernels: avx2 needs"):
        check_pinned("avx2")
    check_pinned(None)  # no pins asked: nothing to check


def test_unknown_kernel_set_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"cpu_kernels must be one of \['avx2'\] or null, got 'avx512'"):
        TrainSettings.from_dict({**MICRO_TRAIN, "cpu_kernels": "avx512"})


def test_deterministic_kernels_hold_for_the_block_only() -> None:
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.mkldnn.enabled)
    with deterministic_kernels("avx2"):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.mkldnn.deterministic
        assert not torch.backends.mkldnn.enabled  # convolutions through ATen + MKL
    assert (torch.are_deterministic_algorithms_enabled(), torch.backends.mkldnn.enabled) == before
    with deterministic_kernels(None):
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.mkldnn.enabled
    with deterministic_kernels("avx2", cpu=False):  # GPUs: left to their own settings
        assert torch.are_deterministic_algorithms_enabled() == before[0]
