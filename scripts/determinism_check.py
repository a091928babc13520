"""Train and sample a shortened tiny-CFLD run twice, once while CPU hogs compete for the cores, and
check that every checkpoint file and every generated image is byte-identical.

    python scripts/determinism_check.py                       # 20 steps, 2 test pairs, 2 hogs per core
    python scripts/determinism_check.py --steps 50 --pairs 8 --work /tmp/detcheck --keep

Each run is a fresh `pgpis train` + `pgpis generate` process pair (the way `dvc repro` runs them), on a
small synthetic dataset made here, with the pipeline's own train config (`--config`). The second
run starts busy-looping processes first, so its threads are preempted at other moments than the
first run's. Prints the wall time of each run (their ratio is what the competition cost) and every
file that differs; exits 1 if any does. `tests/test_determinism_check.py` (slow) runs it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "methods/cfld/configs/train_tiny.yaml"
# Files whose bytes legitimately depend on where or when a run happened: compared without them.
VOLATILE = {"manifest.json"}


def tree_hashes(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def start_hogs(count: int) -> list[subprocess.Popen]:
    """``count`` processes that spin on the CPU until killed (each one Python busy loop)."""
    code = "x = 0\nwhile True:\n    x = (x * 1103515245 + 12345) % 2147483648\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def pgpis(*args: str) -> None:
    cmd = [sys.executable, "-m", "bench.cli.main", *args]
    # Idle OpenMP threads sleep rather than spin (no bit changes): sampling beside the busy processes
    # would otherwise crawl. Training waits its own way (GOMP_SPINCOUNT, with its pinned kernels).
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"determinism_check: failed ({done.returncode}): {' '.join(cmd)}")


def one_run(work: Path, name: str, dataset: Path, config: Path, steps: int, pairs: int) -> float:
    run = work / name
    started = time.perf_counter()
    pgpis("train", "--method", "cfld", "--config", str(config), "--dataset", str(dataset),
          "--out", str(run / "train"), "--max-steps", str(steps))  # fmt: skip
    pgpis("generate", "--method", "cfld", "--checkpoint", str(run / "train" / "model"),
          "--dataset", str(dataset), "--out", str(run / "generated"), "--limit", str(pairs),
          "--no-progress")  # fmt: skip
    return time.perf_counter() - started


def compare(a: Path, b: Path) -> list[str]:
    """Relative paths that differ (or exist on one side only) between the two run folders."""
    ha, hb = tree_hashes(a), tree_hashes(b)
    names = sorted(set(ha) | set(hb))
    return [n for n in names if Path(n).name not in VOLATILE and ha.get(n) != hb.get(n)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per run (default: %(default)s)")
    p.add_argument("--pairs", type=int, default=2, help="test pairs sampled per run (default: %(default)s)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="train config (default: train_tiny)")
    p.add_argument("--hogs", type=int, default=2 * (os.cpu_count() or 1),
                   help="busy processes during the second run (default: 2 per core = %(default)s)")  # fmt: skip
    p.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bench.data.synth import SynthSettings, synthesize

    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="pgpis-determinism-")
    work = args.work or Path(tmp.name)
    try:
        dataset = work / "dataset"
        # Enough persons for batch 8 and a few test pairs; the same poses and renderer as the pipeline.
        synthesize(dataset, SynthSettings(train_identities=16, test_identities=2, images_per_identity=3))
        quiet = one_run(work, "quiet", dataset, args.config, args.steps, args.pairs)
        hogs = start_hogs(args.hogs)
        try:
            loaded = one_run(work, "loaded", dataset, args.config, args.steps, args.pairs)
        finally:
            stop(hogs)
        differ = compare(work / "quiet", work / "loaded")
        n = len(tree_hashes(work / "quiet"))
        print(f"config {args.config.name}, {args.steps} steps, {args.pairs} pairs, {os.cpu_count()} CPUs")
        print(f"quiet run {quiet:.1f} s; run beside {args.hogs} busy processes {loaded:.1f} s "
              f"(x{loaded / quiet:.2f})")  # fmt: skip
        if differ:
            print(f"DIFFERENT: {len(differ)} of {n} files:")
            for name in differ:
                print(f"  {name}")
            return 1
        print(f"identical: all {n} files (checkpoint, model, pipeline.json, images; manifests aside)")
        return 0
    finally:
        if tmp is not None and not args.keep:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
