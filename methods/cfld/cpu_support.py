"""What this CPU offers: half-precision support (shared by sampling and training) and free memory."""

from __future__ import annotations

import warnings

# CPU flags that give autocast native arithmetic in each half-precision dtype.
NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (memory the kernel can hand out without swapping), or None
    where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def warn_if_emulated(dtype: str, advice: str) -> None:
    """Warn when a half-precision dtype runs without hardware support on this CPU: torch emulates it,
    and it is many times SLOWER than fp32 (bf16 on an AVX2 CPU: 7x per step, benchmarks/cfld_sampling.py).
    ``advice`` names the setting to change where the warning comes from (sampling or training)."""
    needed = NATIVE_CPU_FLAGS.get(dtype)
    flags = cpu_flags()
    if needed and flags and not flags & set(needed):
        warnings.warn(
            f"cfld: dtype {dtype} on this CPU has no hardware support (no {' or '.join(needed)}); "
            f"torch emulates it, many times slower than fp32. {advice}",
            stacklevel=3,
        )
