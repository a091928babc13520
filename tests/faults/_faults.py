"""Helpers of the fault-injection tests: run `pgpis` in a subprocess, kill it with SIGKILL in the middle
of a write, compare folders byte for byte, find our temporaries."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# bench.io.TEMP_PREFIX, spelled out so that these tests import (and fail one by one, for what they
# check) on a version without it; test_damaged_outputs checks that the two agree.
TEMP_PREFIX = ".pgpis-tmp-"

# Small enough that every command runs in seconds: 2 train and 1 test identities, 3 images each,
# so 6 test pairs and 12 train pairs.
TINY_SYNTH = {"train_identities": 2, "test_identities": 1, "images_per_identity": 3}


def synth_args(out: Path) -> list[str]:
    return [
        "synth",
        "--out",
        str(out),
        "--train-identities",
        str(TINY_SYNTH["train_identities"]),
        "--test-identities",
        str(TINY_SYNTH["test_identities"]),
        "--images-per-identity",
        str(TINY_SYNTH["images_per_identity"]),
    ]


def pgpis_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.cli.main", *args]


def run_pgpis(
    *args: str, limit_file_kib: int | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `pgpis ARGS` to the end in a subprocess (optionally under `ulimit -f`), capturing its output."""
    cmd = pgpis_command(*args)
    if limit_file_kib is not None:
        # bash's ulimit -f counts 1024-byte blocks; Python ignores SIGXFSZ, so a write past it fails with EFBIG.
        cmd = ["bash", "-c", f'ulimit -f {limit_file_kib} && exec "$@"', "bash", *cmd]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TQDM_DISABLE", "1")
    env["OMP_NUM_THREADS"] = "1"  # the small shared CPU: no oversubscription
    env.pop("WORLD_SIZE", None)
    return env


def temporaries(folder: Path) -> list[Path]:
    """Every temporary name of ours anywhere under ``folder`` (and ``folder`` itself)."""
    found = [p for p in folder.rglob(f"{TEMP_PREFIX}*")] if folder.exists() else []
    return sorted(found)


def kill_during_write(
    args: list[str],
    watch: Path,
    rng: random.Random,
    max_delay: float = 0.05,
    timeout: float = 300,
    prefix: str = TEMP_PREFIX,
) -> bool:
    """Start `pgpis ARGS`; as soon as one of our temporaries appears under ``watch`` (a write is under
    way), wait a random 0..max_delay s (from ``rng``) and SIGKILL the process. Returns whether it was
    killed (False if it finished before: the caller's rerun must then be a no-op)."""
    proc = subprocess.Popen(
        pgpis_command(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
    )
    delay = rng.uniform(0.0, max_delay)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if _has_temporary(watch, prefix):
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    assert proc.returncode in (0, -signal.SIGKILL), err
    return proc.returncode == -signal.SIGKILL


def _has_temporary(folder: Path, prefix: str) -> bool:
    try:
        for _dirpath, dirs, files in os.walk(folder):
            # A writability probe (``*.probe``, made and removed before the work) is not an output write.
            if any(n.startswith(prefix) and not n.endswith(".probe") for n in (*dirs, *files)):
                return True
    except OSError:
        return False
    return False


def digest_tree(folder: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(rel.startswith(e) for e in exclude):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def dead_pid() -> int:
    """The pid of a process that has exited (so our temporaries named with it are stale)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def inshop_tree(dataset: Path, images: Path) -> Path:
    """An img_highres tree (In-shop path form) holding a dataset's images, and a splits folder."""
    from bench.data.deepfashion import read_list, unflatten_name

    for split in ("train", "test"):
        for name in read_list(dataset / f"{split}.lst"):
            dest = images / unflatten_name(name, root="img_highres").split("/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dataset / f"{split}_highres" / name, dest)
    splits = images.parent / "splits"
    splits.mkdir()
    for f in dataset.iterdir():
        if f.is_file() and f.suffix in (".csv", ".lst"):
            shutil.copyfile(f, splits / f.name)
    return splits
