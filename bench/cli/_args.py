"""Argument types shared by several subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


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


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number no lower than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def add_compute_arguments(
    p: argparse.ArgumentParser,
    runs: str,
    device_help: str,
    workers_help: str = "decode threads (0: the main thread)",
) -> None:
    """--batch-size, --workers and --device of the commands that run the metric networks (evaluate,
    refstats, fid); ``runs`` names what runs on the device, ``device_help`` the devices it takes."""
    p.add_argument(
        "--batch-size",
        type=at_least(1),
        default=32,
        help="images per network batch (does not change results)",
    )
    p.add_argument("--workers", type=at_least(0), default=2, help=f"{workers_help} (default 2)")
    p.add_argument("--device", default="auto", help=f"where {runs}: {device_help} (default auto)")
