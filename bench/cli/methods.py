"""Placeholder for `pgpis methods`; replaced by its implementation."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("methods", help="(not implemented yet)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    raise SystemExit("pgpis methods: not implemented yet")
