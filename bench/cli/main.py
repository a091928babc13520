"""Entry point of the ``pgpis`` command.

Each subcommand lives in its own module ``bench.cli.<module>`` exposing
``add_parser(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func=run``.
Modules keep heavy imports (torch, diffusers) inside ``run`` so that ``pgpis --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from bench import __version__
from bench.errors import BenchError

# (module, one-line help) in the order a user meets them in the pipeline.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("synth", "write the embedded synthetic dataset in DeepFashion's on-disk format"),
    ("fetch", "get the public DeepFashion split files (and verify them); images from a local folder"),
    ("prepare", "build train_highres/ and test_highres/ from a DeepFashion img_highres folder or zip"),
    ("methods", "list the installed methods (entry-point group pgpis_bench.methods)"),
    ("train", "train a method with Accelerate"),
    ("generate", "generate one image per test pair with a method"),
    ("fetch_weights", "download the metric networks' weights into the standard caches"),
    ("refstats", "compute (or import) the FID reference statistics of a dataset under a protocol"),
    ("evaluate", "score a folder of generated images under a named protocol"),
    ("fid", "FID between two image folders (or a folder and cached statistics) under a protocol"),
    ("report", "combine metrics files into one table per protocol (Markdown, CSV, MLflow)"),
    ("figures", "draw the comparison grid (source | pose | truth | runs) and the metrics chart"),
    ("user_study", "make blinded user-study sheets; score the answers (Jab, G2R, R2G)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgpis",
        description=(
            "pgpis-bench: reproducible benchmarking of pose-guided person image synthesis. "
            "Every number is computed under a named protocol; see `pgpis evaluate --help`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pgpis-bench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module(f"bench.cli.{module_name}")
        p = module.add_parser(sub)
        if p.description is None:
            p.description = help_text
    # argparse shows the help given to add_parser; make sure every command has one.
    for action in sub._choices_actions:
        if not action.help:
            action.help = dict((m.replace("_", "-"), h) for m, h in SUBCOMMANDS).get(action.dest, "")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except BenchError as err:
        print(f"pgpis {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"pgpis {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
