"""kill -9 in the middle of a write, then the same command again: the final outputs are byte-identical
to an uninterrupted run and no temporary is left. Kill times come from a fixed seed; each kill lands
while one of our temporaries exists (a write is under way), at a random delay after it appears."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _faults import (
    TEMP_PREFIX,
    digest_tree,
    inshop_tree,
    kill_during_write,
    synth_args,
    temporaries,
)

from bench.cli.main import main

SEED = 17


def test_generate_killed_then_resumed(tiny_synth: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    args = [
        "generate",
        "--method",
        "pose-warp",
        "--dataset",
        str(tiny_synth),
        "--batch-size",
        "1",
        "--no-progress",
    ]
    assert main([*args, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "killed"
    kills = sum(kill_during_write([*args, "--out", str(out)], out, rng) for _ in range(2))
    assert kills >= 1, "the run finished before any kill: the test would prove nothing"
    assert main([*args, "--out", str(out)]) == 0
    assert digest_tree(out) == digest_tree(tmp_path / "reference")
    assert temporaries(out) == []


def test_synth_killed_then_rerun(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    assert main(synth_args(tmp_path / "reference" / "ds")) == 0
    parent = tmp_path / "killed"
    parent.mkdir()
    assert kill_during_write(synth_args(parent / "ds"), parent, rng)
    assert temporaries(parent), "a killed synth leaves its staging folder (removed by the next run)"
    assert main(synth_args(parent / "ds")) == 0
    assert digest_tree(parent / "ds") == digest_tree(tmp_path / "reference" / "ds")
    assert temporaries(parent) == []


def test_prepare_killed_then_rerun(tiny_synth: Path, tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    images = tmp_path / "img_highres"
    splits = inshop_tree(tiny_synth, images)
    args = ["prepare", "--images", str(images), "--splits", str(splits), "--link", "copy"]
    assert main([*args, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "killed"
    assert kill_during_write([*args, "--out", str(out)], out, rng)
    assert main([*args, "--out", str(out)]) == 0
    assert digest_tree(out) == digest_tree(tmp_path / "reference")
    assert temporaries(out) == []


@pytest.fixture
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Random-init (BatchNorm-calibrated) torchvision Inception weights, the FID extractor of cfld-256,
    in the real file name inside this test's $TORCH_HOME (as tests/metrics does, one network only)."""
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).parents[1] / "metrics"))
    from _metrics_data import calibrated

    from bench.metrics import weights
    from bench.metrics.inception import torchvision_inception_skeleton

    spec = weights.WEIGHTS["inception_v3_tv"]
    store = tmp_path_factory.getbasetemp() / "fault-weights" / spec.filename
    if not store.exists():
        store.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(1234)
        torch.save(calibrated(torchvision_inception_skeleton()).state_dict(), store)
    weights.checkpoints_dir().mkdir(parents=True, exist_ok=True)
    (weights.checkpoints_dir() / spec.filename).symlink_to(store)


def test_refstats_killed_then_rerun(tmp_path: Path, inception_weights: None) -> None:
    from bench.data.synth import SynthSettings, synthesize

    rng = random.Random(SEED + 3)
    dataset = tmp_path / "two-train-images"  # cfld-256's statistics cover train_highres: keep it at 2 images
    synthesize(dataset, SynthSettings(train_identities=1, test_identities=1, images_per_identity=2))
    args = ["refstats", "--dataset", str(dataset), "--protocol", "cfld-256", "--allow-unverified-weights",
            "--no-progress", "--workers", "0"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "reference" / "stats.npz")]) == 0
    out = tmp_path / "killed"
    out.mkdir()
    # The statistics are written at the very end: the kill lands while the partial .npz is written.
    assert kill_during_write([*args, "--out", str(out / "stats.npz")], out, rng, max_delay=0.005)
    assert temporaries(out), "the killed write left its partial .npz (removed by the next run)"
    assert main([*args, "--out", str(out / "stats.npz")]) == 0
    assert digest_tree(out) == digest_tree(tmp_path / "reference")
    assert temporaries(out) == []


def test_evaluate_killed_then_rerun(tiny_synth: Path, tmp_path: Path) -> None:
    """kill -9 at seeded random points of `pgpis evaluate` (its write of metrics.json + per_image.csv
    takes milliseconds, too short to aim at, so the kills are spread over the whole run): after each,
    the two outputs exist both or neither. The rerun's per-image scores are byte-identical to an
    uninterrupted run's, metrics.json equal but for its timings, and no temporary is left."""
    import json
    import signal
    import subprocess
    import time

    from _faults import _env, pgpis_command

    rng = random.Random(SEED + 5)
    gen = tmp_path / "generated"
    assert main(["generate", "--method", "copy-source", "--dataset", str(tiny_synth), "--out", str(gen),
                 "--no-progress"]) == 0  # fmt: skip
    args = ["evaluate", "--protocol", "pgpis-v1", "--images", str(gen), "--dataset", str(tiny_synth),
            "--no-progress", "--no-cache", "--workers", "0", "--device", "cpu"]  # fmt: skip

    def outputs(folder: Path) -> list[str]:
        return ["--out", str(folder / "metrics.json"), "--per-image", str(folder / "per_image.csv")]

    ref = tmp_path / "reference"
    started = time.monotonic()
    done = subprocess.run(pgpis_command(*args, *outputs(ref)), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    whole = time.monotonic() - started
    out = tmp_path / "killed"
    out.mkdir()
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(pgpis_command(*args, *outputs(out)), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(rng.uniform(0.3, 0.95) * whole)
        proc.send_signal(signal.SIGKILL)
        kills += proc.wait() == -signal.SIGKILL
        present = [(out / name).exists() for name in ("metrics.json", "per_image.csv")]
        assert present[0] == present[1], f"half a set of outputs after a kill: {present}"
    assert kills >= 1, "every run finished before its kill: the test would prove nothing"
    assert main([*args, *outputs(out)]) == 0
    assert (out / "per_image.csv").read_bytes() == (ref / "per_image.csv").read_bytes()

    def without_timings(path: Path) -> dict:
        record = json.loads(path.read_text())
        record.pop("timing_seconds", None)
        return record

    assert without_timings(out / "metrics.json") == without_timings(ref / "metrics.json")
    assert temporaries(out) == []


def test_train_killed_then_resumed(tiny_synth: Path, tmp_path: Path) -> None:
    """Training resumes from its last whole checkpoint; the final model folder (weights, config,
    pipeline files) equals the uninterrupted run's byte for byte, and no staging folder is left. (The
    weights compared to float32 rounding until model.safetensors' header was written in a fixed order:
    safetensors orders its metadata per process, so byte equality held in some runs only.)"""
    import yaml
    from _cfld_micro import MICRO_TRAIN, torch_threads

    rng = random.Random(SEED + 4)
    config = tmp_path / "micro.yaml"
    config.write_text(yaml.safe_dump({**MICRO_TRAIN, "checkpoint_every": 1}))
    args = [
        "train",
        "--method",
        "cfld",
        "--config",
        str(config),
        "--dataset",
        str(tiny_synth),
        "--max-steps",
        "3",
    ]
    with torch_threads(1):
        assert main([*args, "--out", str(tmp_path / "reference")]) == 0
        out = tmp_path / "killed"
        # Checkpoints are staged in checkpoints/.pgpis-tmp-step_*; the kill lands while one is being written.
        assert kill_during_write([*args, "--out", str(out)], out, rng, prefix=f"{TEMP_PREFIX}step_")
        assert main([*args, "--out", str(out), "--resume"]) == 0
    ref = tmp_path / "reference" / "model"
    for name in ("config.json", "pipeline.json", "model.safetensors"):
        assert (out / "model" / name).read_bytes() == (ref / name).read_bytes(), name
    assert [p for p in out.rglob(".*")] == []
