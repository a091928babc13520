"""Placeholder for `pgpis evaluate`; replaced by its implementation."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="(not implemented yet)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    raise SystemExit("pgpis evaluate: not implemented yet")
