"""CPU training whose bytes depend on the environment and the thread count only (train config key
``cpu_kernels``).

Why: the same training run gives different weights on CPUs with different instruction sets (the
project's VMs have been AMD EPYC with AVX2 and Intel Xeon with AVX-512), because torch picks its
vectorised kernels (ATen), its oneDNN convolutions and its MKL matrix products by the CPU's
instruction set, and each choice sums in another order. ``cpu_kernels: avx2`` pins all three to their AVX2 code and sends convolutions through ATen +
MKL instead of oneDNN (whose blocking also follows cache sizes), in deterministic mode:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's vectorised kernels (softmax, norms, reductions, SDPA);
- ``MKL_CBWR=AVX2,STRICT``: MKL's conditional bitwise reproducibility on its AVX2 branch;
  ``MKL_DYNAMIC=FALSE``: MKL always uses the threads it is given;
- ``DNNL_MAX_CPU_ISA=AVX2``: oneDNN, for whatever still reaches it;
- ``OMP_DYNAMIC=FALSE``: OpenMP teams keep their size whatever the machine's load;
  ``GOMP_SPINCOUNT=10000``: an idle OpenMP thread spins about 0.1 ms for the next parallel region,
  then sleeps. How threads wait changes no bit (the weights' hash after 6 steps was the same for
  every setting below), only the speed. Measured on the tiny config (batch 4; seconds per step, 2
  threads, quiet / beside 4 busy processes): sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) 0.75 /
  1.93, spinning 10000 0.40 / 2.79, 30000 0.38 / 4.14, spinning without end (``ACTIVE``) 0.38 on a
  quiet machine but about 55 s per step (batch 8) beside other jobs. A step is many small parallel
  regions, so waking sleeping threads for each one doubles it; a bounded spin keeps nearly all of the
  quiet speed and a loaded machine usable. An explicit ``GOMP_SPINCOUNT`` wins over any
  ``OMP_WAIT_POLICY`` the user has set (torch's wheels use GNU OpenMP, which reads it).

These are read once when torch (or MKL / oneDNN) first starts, so ``pgpis train`` restarts itself
with them (:func:`restart_pinned`) before it imports the model; :func:`check_pinned` refuses a
process that started without them. The thread count comes from the config (``cpu_threads``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.api import ConfigError

KERNEL_SETS = ("avx2",)
# Set in the environment before torch loads; the values torch/MKL/oneDNN read at start-up.
PINNED_ENV = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2,STRICT",
        "MKL_DYNAMIC": "FALSE",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "OMP_DYNAMIC": "FALSE",
        "GOMP_SPINCOUNT": "10000",
    }
}
# torch.backends.cpu.get_cpu_capability() once the pins are in force.
CAPABILITY = {"avx2": "AVX2"}


def check_kernels(name: str | None, where: str) -> None:
    if name is not None and name not in KERNEL_SETS:
        raise ConfigError(f"{where}: cpu_kernels must be one of {list(KERNEL_SETS)} or null, got {name!r}")


def missing_env(name: str) -> dict[str, str]:
    """The pins of ``name`` that this process's environment lacks."""
    return {k: v for k, v in PINNED_ENV[name].items() if os.environ.get(k) != v}


def started_as_cli() -> bool:
    """Whether this process is the ``pgpis`` command (its script, or ``-m bench.cli.main`` as under
    ``accelerate launch``), the only kind :func:`restart_pinned` may replace."""
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return first.name == "pgpis" or first.parts[-3:] == ("bench", "cli", "main.py")


def restart_pinned(name: str | None) -> None:
    """Re-execute this very ``pgpis`` command (same interpreter, same arguments) with the pins of
    ``name`` in its environment, unless they are there already. Returns when nothing is to be done
    or when this process is not the command (a test or a notebook calling ``main()``: never replaced;
    :func:`check_pinned` then explains what to set)."""
    if name is None or not missing_env(name) or not started_as_cli():
        return
    env = {**os.environ, **PINNED_ENV[name]}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def check_pinned(name: str | None) -> None:
    """Refuse to train with ``cpu_kernels: name`` in a process whose torch did not start pinned."""
    if name is None:
        return
    import torch

    lacking = missing_env(name)
    capability = torch.backends.cpu.get_cpu_capability()
    if lacking or capability != CAPABILITY[name]:
        pins = " ".join(f"{k}={v}" for k, v in PINNED_ENV[name].items())
        raise ConfigError(
            f"cpu_kernels: {name} needs torch started with {pins} (this process: capability "
            f"{capability}, missing {sorted(lacking) or 'none'}); `pgpis train` sets them itself; from "
            "Python, start the interpreter with them, or set cpu_kernels: null in the train config"
        )


@contextmanager
def deterministic_kernels(name: str | None, cpu: bool = True) -> Iterator[None]:
    """Deterministic torch algorithms for the block; with ``name``, convolutions through ATen + MKL
    (not oneDNN). The previous settings come back afterwards. Not on GPUs (``cpu=False``), where
    deterministic CUDA kernels need settings of their own (CUBLAS_WORKSPACE_CONFIG)."""
    import torch

    if not cpu:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.mkldnn.enabled,
        torch.backends.mkldnn.deterministic,
        torch.utils.deterministic.fill_uninitialized_memory,
    )
    torch.use_deterministic_algorithms(True)
    # Deterministic mode also fills every new tensor with NaN (to expose reads of memory no kernel
    # wrote): one fill per allocation, ~7% of a tiny-CFLD step, and no bit of the result depends on it.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.mkldnn.deterministic = True
    if name is not None:
        torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.mkldnn.enabled = before[2]
        torch.backends.mkldnn.deterministic = before[3]
        torch.utils.deterministic.fill_uninitialized_memory = before[4]


__all__ = ["KERNEL_SETS", "PINNED_ENV", "check_pinned", "deterministic_kernels", "restart_pinned"]
