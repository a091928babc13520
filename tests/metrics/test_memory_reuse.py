"""The CPU scoring process keeps freed memory for reuse (bench/memory.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Three 10 MiB blocks allocated, touched and freed, 20 times: with glibc's default thresholds the
# heap's free top (30 MiB) exceeds twice the dynamic mmap threshold and is returned to the system,
# so every round faults its pages in again; with the thresholds fixed it is reused.
ROUNDS = r"""
import resource, sys
import numpy as np
from bench.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def work():
    blocks = [np.ones(5 * 2**20 // 2, np.float32) for _ in range(3)]
    del blocks
work()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    work()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults_per_round(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True, timeout=120
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's (Linux); elsewhere nothing is set"
)
def test_freed_blocks_are_reused_without_page_faults() -> None:
    default, kept = _faults_per_round("default"), _faults_per_round("keep")
    assert default > 500, f"the scenario no longer faults by default ({default} faults per round)"
    assert kept < default / 20, (default, kept)


def test_networks_on_the_cpu_fix_the_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.metrics import networks
    from bench.metrics.options import EvalOptions
    from bench.metrics.protocols import get_protocol

    calls = []
    monkeypatch.setattr(networks, "keep_freed_memory", lambda: calls.append(1) or True)
    networks.load_networks(get_protocol("pgpis-v1"), EvalOptions(device="cpu"), extractors=[])
    assert calls == [1]
