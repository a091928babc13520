"""What pinned CPU kernels (train config ``cpu_kernels: avx2``) cost per tiny-CFLD training step.

    python benchmarks/cfld_train_pinning.py [--dataset datasets/synthetic] [--steps 8] [--repeats 3]

Times one optimizer step of methods/cfld/configs/train_tiny.yaml (its batch: forward, backward, Adam)
in fresh processes, alternating the two settings repeat by repeat so that a busy machine slows both
alike: torch's own kernel choice for this CPU (what training did before pinning) and the pinned set
(AVX2 ATen/MKL/oneDNN, convolutions through ATen + MKL, deterministic algorithms). Prints the median
seconds per step of each (after 2 warm-up steps) and their ratio, with the CPU and thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "methods/cfld/configs/train_tiny.yaml"


def child(dataset: str, steps: int, pinned: bool) -> None:
    import torch

    from methods.cfld.cpu_determinism import deterministic_kernels
    from methods.cfld.schedulers import make_scheduler
    from methods.cfld.train import TrainStep, _build_model, _sizes, micro_generator, prepare_inputs
    from methods.cfld.train_data import CFLDTrainData, collate
    from methods.cfld.train_settings import TrainSettings
    from methods.cfld.vae import build_codec

    settings = TrainSettings.from_yaml(CONFIG)
    torch.set_num_threads(int(settings.cpu_threads))
    torch.manual_seed(settings.seed)
    model = _build_model(settings)
    codec = build_codec(dict(settings.latent))
    data = CFLDTrainData(dataset, *_sizes(model, settings))
    batch = collate([data[i] for i in range(settings.batch_size)])
    step = TrainStep(model).train()
    optimizer = torch.optim.Adam(list(model.trainable_parameters()), lr=settings.lr)
    sched = make_scheduler("ddpm")
    times = []
    with deterministic_kernels("avx2") if pinned else contextlib.nullcontext():
        for k in range(steps + 2):
            inputs = prepare_inputs(
                batch, codec, sched, settings, 0.2, micro_generator(0, k, 0), torch.device("cpu")
            )
            t = time.perf_counter()
            loss = step(**inputs)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t)
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "step_s": times[2:]}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--dataset", default=str(REPO / "datasets/synthetic"), help="training data (default: %(default)s)"
    )
    p.add_argument("--steps", type=int, default=8, help="timed steps per process (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="processes per setting (default: %(default)s)")
    p.add_argument("--child", choices=("default", "pinned"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.dataset, args.steps, args.child == "pinned")
        return 0
    from machine import cpu_name

    from methods.cfld.cpu_determinism import PINNED_ENV

    base = {k: v for k, v in os.environ.items() if k not in PINNED_ENV["avx2"]}
    # Both wait for work the same way (GOMP_SPINCOUNT), so the comparison is about the kernels alone.
    spin = {"GOMP_SPINCOUNT": PINNED_ENV["avx2"]["GOMP_SPINCOUNT"]}
    env = {"default": {**base, **spin}, "pinned": {**base, **PINNED_ENV["avx2"]}}
    medians: dict[str, list[float]] = {"default": [], "pinned": []}
    caps = {}
    for r in range(args.repeats):
        for name in ("default", "pinned"):
            cmd = [
                sys.executable,
                __file__,
                "--child",
                name,
                "--dataset",
                args.dataset,
                "--steps",
                str(args.steps),
            ]
            done = subprocess.run(cmd, cwd=REPO, env=env[name], capture_output=True, text=True, check=True)
            out = json.loads(done.stdout.strip().splitlines()[-1])
            caps[name] = out["capability"]
            medians[name].append(statistics.median(out["step_s"]))
            print(
                f"repeat {r + 1} {name:<8} ({out['capability']}): {medians[name][-1]:.3f} s/step", flush=True
            )
    d, q = statistics.median(medians["default"]), statistics.median(medians["pinned"])
    batch = yaml.safe_load(CONFIG.read_text())["batch_size"]
    # Each repeat's pair ran back to back, so its ratio is what a drifting machine distorts least.
    ratios = [b / a for a, b in zip(medians["default"], medians["pinned"])]
    print(
        f"{cpu_name()}, {os.cpu_count()} CPUs, train_tiny (batch {batch}, 2 threads), median of {args.repeats} "
        f"processes x {args.steps} steps: default ({caps['default']}) {d:.3f} s/step, pinned "
        f"({caps['pinned']}, cpu_kernels avx2) {q:.3f} s/step; ratio pinned/default per repeat "
        f"{', '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
