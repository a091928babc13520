"""What this CPU offers: half-precision support (shared by sampling and training) and free memory."""

from __future__ import annotations

import warnings

# CPU flags that give autocast native arithmetic in each half-precision dtype.
NATIVE_CPU_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}


def _proc_field(path: str, name: str) -> str | None:
    """The text after the colon on the first line of a /proc file that starts with ``name``, or
    None where the file or the line is missing (not Linux, a sandbox)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1]
    except (OSError, IndexError):
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it cannot be read)."""
    return set((_proc_field("/proc/cpuinfo", "flags") or "").split())


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (memory the kernel can hand out without swapping), or None
    where it cannot be read."""
    value = _proc_field("/proc/meminfo", "MemAvailable")
    try:
        return int(value.split()[0]) * 1024 if value else None  # the file counts kB
    except (ValueError, IndexError):
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
