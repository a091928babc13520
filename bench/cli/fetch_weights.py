"""`pgpis fetch-weights`: download the metric networks' weights into the standard torch cache."""

from __future__ import annotations

import argparse

EPILOG = """\
Files go to $TORCH_HOME/hub/checkpoints/<official name> (default ~/.cache/torch/hub/checkpoints),
where torchvision, lpips and pytorch-fid look too. Each download is checked against the sha256
prefix in its official name and moved into place only when it matches. Offline, download the URLs
listed by --list by other means and put the files at the printed destinations.

examples:
  pgpis fetch-weights                 # FID Inception (both), LPIPS alex backbone
  pgpis fetch-weights --all           # also the 528 MB VGG16 backbone for lpips_vgg
  pgpis fetch-weights --list          # what is where, verified or not
  pgpis fetch-weights alexnet --base-url http://mirror.local/weights/
"""

DEFAULT_KEYS = ("pt_inception", "inception_v3_tv", "alexnet")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.metrics.weights import WEIGHTS

    p = sub.add_parser(
        "fetch-weights",
        help="download the metric networks' weights into the standard caches",
        description="Download (and sha256-check) the pretrained weights the metrics need.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "keys",
        nargs="*",
        metavar="KEY",
        help=f"weights to fetch: {', '.join(WEIGHTS)} (default: {', '.join(DEFAULT_KEYS)})",
    )
    p.add_argument("--all", action="store_true", help="fetch every weight, including vgg16")
    p.add_argument("--list", action="store_true", help="show each weight's file, URL, destination and status")
    p.add_argument(
        "--base-url", default=None, help="mirror: download <base-url>/<file name> instead of the official URL"
    )
    p.add_argument("--force", action="store_true", help="download again even if the file exists")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.errors import ConfigError
    from bench.metrics import weights

    if args.list:
        for spec in weights.WEIGHTS.values():
            dest = weights.checkpoints_dir() / spec.filename
            if dest.is_file():
                ok = weights.sha256_file(dest).startswith(spec.hash_prefix or "")
                status = "present, verified" if ok else "present, sha256 MISMATCH"
            else:
                status = "missing"
            print(
                f"{spec.key:<16} {status:<26} {dest}\n{'':<16} {spec.url}\n{'':<16} used by: {spec.used_by}"
            )
        return 0
    keys = list(weights.WEIGHTS) if args.all else (args.keys or list(DEFAULT_KEYS))
    unknown = [k for k in keys if k not in weights.WEIGHTS]
    if unknown:
        raise ConfigError(
            f"unknown weight key(s) {', '.join(unknown)}; choose from {', '.join(weights.WEIGHTS)}"
        )
    for key in keys:
        spec = weights.WEIGHTS[key]
        url = args.base_url.rstrip("/") + "/" + spec.filename if args.base_url else None
        path = weights.download(spec, url=url, force=args.force)
        print(f"{key}: {path}")
    return 0
