"""`pgpis train`: train a method with Accelerate (the method owns its training loop).

The engine never imports a method by name: it resolves ``--method`` through the registry and
calls the method's ``train(args)``. Multi-GPU / multi-node: ``accelerate launch -m bench.cli.main
train ...`` (or ``accelerate launch $(which pgpis) train ...``).
"""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train a method on a dataset root (DeepFashion on-disk format, e.g. the synthetic set of
`pgpis synth`). The final model is written to OUT/model; checkpoints to OUT/checkpoints every N
steps (see the config), so an interrupted run continues with --resume. Examples:
  pgpis train --method cfld --config methods/cfld/configs/train_tiny.yaml --dataset datasets/synthetic --out runs/cfld_tiny
  accelerate launch --multi_gpu --num_processes 8 -m bench.cli.main train --method cfld \\
      --config methods/cfld/configs/train_paper.yaml --dataset fashion --out runs/cfld_paper
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a method with Accelerate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--method", required=True, help="method name (see `pgpis methods`)")
    p.add_argument("--config", required=True, help="the method's training config (YAML)")
    p.add_argument("--dataset", required=True, help="dataset root (DeepFashion on-disk format)")
    p.add_argument("--out", required=True, help="run folder: checkpoints/ and the final model/")
    p.add_argument(
        "--max-steps", type=int, default=None, help="stop after this many optimizer steps in total"
    )
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument(
        "--tracker", choices=("none", "mlflow"), default="none", help="experiment tracker (default: none)"
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.errors import ConfigError
    from bench.registry import get_method_class

    cls = get_method_class(args.method)
    if not getattr(cls.info, "trainable", False):
        raise ConfigError(f"method {args.method!r} cannot be trained (it has no training loop)")
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError(f"--max-steps must be >= 1, got {args.max_steps}")
    from bench.io import check_writable_folder

    check_writable_folder(args.out)  # fail before the model is built, not at the first checkpoint
    cls().train(args)
    return 0
