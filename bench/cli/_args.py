"""Argument types shared by several subcommands."""

from __future__ import annotations

import argparse


def image_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``256x176``) -> (H, W), both positive."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 256x176, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def add_mlflow_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--mlflow URI`` and ``--experiment``: optional tracking, never required."""
    p.add_argument(
        "--mlflow",
        metavar="URI",
        default=None,
        help=f"also log {what} to MLflow at this tracking URI (e.g. sqlite:///mlflow.db); "
        "default: $MLFLOW_TRACKING_URI if set, else no tracking",
    )
    p.add_argument(
        "--experiment", default="pgpis-bench", help="MLflow experiment name (default: %(default)s)"
    )


def add_method_arguments(p: argparse.ArgumentParser) -> None:
    """--method, --config and --checkpoint: which installed method runs, and with what (generate, synthesize)."""
    p.add_argument("--method", required=True, help="installed method name, e.g. copy-source, pose-warp, cfld")
    p.add_argument(
        "--config", help="method config file, YAML or JSON mapping (default: the method's defaults)"
    )
    p.add_argument(
        "--checkpoint", help="method weights, a file or folder (only for methods that have weights)"
    )
