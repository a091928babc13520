"""`pgpis refstats`: FID reference statistics of a dataset under a protocol, as a DVC-friendly file."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
The statistics (mu, sigma in float64) are computed by streaming the protocol's reference images
(e.g. every train_highres/*.jpg for cfld-*, every train.lst image for pidm and pgpis-v1) through
the protocol's resize rule and feature extractor. The .npz holds `mu` and `sigma` exactly as
pytorch-fid saves them, plus `meta` (protocol settings, extractor, weights' sha256, number of
images, sha256 of the file list) which `pgpis evaluate --refstats` checks before use.

--out FILE.npz writes there; --out DIR/ writes DIR/<canonical name>.npz, the name encoding every
choice: <protocol>_<extractor>_<split>-<listing>_n<N>_files<hash>_set<hash>_w<weights sha>[_dropK].npz.

examples:
  pgpis refstats --dataset data/deepfashion --protocol cfld-256 --out reports/refstats/cfld-256.npz
  pgpis refstats --dataset datasets/synthetic --protocol pgpis-v1 --out reports/refstats/
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli._args import add_compute_arguments
    from bench.metrics.device import DEVICE_HELP
    from bench.metrics.extractors import EXTRACTORS
    from bench.metrics.protocols import PROTOCOLS

    p = sub.add_parser(
        "refstats",
        help="compute the FID reference statistics of a dataset under a protocol",
        description="Compute the FID reference statistics (mu, sigma) of a dataset under a protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, type=Path, help="dataset root in DeepFashion format")
    p.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS), help="evaluation protocol")
    p.add_argument(
        "--out", required=True, type=Path, help="FILE.npz, or an existing folder / a path ending in /"
    )
    p.add_argument(
        "--extractor",
        default=None,
        choices=sorted(EXTRACTORS),
        help="which feature extractor of the protocol (needed when it has several, e.g. pgpis-v2: ptincv3 for "
        "FID/KID, dinov2_vitl14 for FD-DINOv2/PRDC); the file keeps every feature vector when a metric needs them",
    )
    p.add_argument(
        "--emulate-drop-remainder",
        type=int,
        default=None,
        metavar="K",
        help="drop the last N %% K reference images in the order PIDM/GFLA's loaders read the folder (*.jpg "
        "then *.png, directory order), as their batch loops do (named in the file)",
    )
    add_compute_arguments(p, "Inception runs", DEVICE_HELP)
    p.add_argument(
        "--allow-unverified-weights",
        action="store_true",
        help="accept weights whose sha256 does not match the official name (tests only)",
    )
    p.add_argument(
        "--if-weights-missing",
        choices=["error", "placeholder"],
        default="error",
        help="offline pipelines: 'placeholder' writes a statistics file holding only the reason, so the "
        "evaluate stage reports FID as unavailable instead of the pipeline stopping (default: error)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.errors import ConfigError, MissingWeightError
    from bench.io import check_outputs_writable
    from bench.metrics import refstats
    from bench.metrics.device import device_name, resolve_device
    from bench.metrics.engine import EvalOptions, load_networks, reference_stats
    from bench.metrics.protocols import get_protocol

    protocol = get_protocol(args.protocol).with_options(drop_remainder=args.emulate_drop_remainder)
    extractors = protocol.feature_extractors
    if args.extractor is None:
        if len(extractors) != 1:
            raise ConfigError(
                f"protocol {protocol.name} has extractors {extractors}; pick one with --extractor"
            )
        extractor = extractors[0]
    elif args.extractor in extractors:
        extractor = args.extractor
    else:
        raise ConfigError(f"--extractor {args.extractor!r} is not used by {protocol.name} ({extractors})")
    resolve_device(args.device)
    if not (args.out.is_dir() or str(args.out).endswith("/")):
        check_outputs_writable([args.out])
    else:
        check_outputs_writable([args.out / ".pgpis-write-check"])
    opts = EvalOptions(
        device=args.device,
        batch_size=args.batch_size,
        workers=args.workers,
        strict=True,
        allow_unverified_weights=args.allow_unverified_weights,
        progress=not args.no_progress,
    )
    try:
        nets = load_networks(protocol, opts, extractors=[extractor])
    except MissingWeightError as err:
        if args.if_weights_missing == "error":
            raise
        placeholder = refstats.RefStats(
            mu=None,
            sigma=None,
            meta={"protocol": protocol.name, "extractor": extractor, "unavailable": str(err)},
        )
        out = args.out / f"{protocol.name}_{extractor}_unavailable.npz" if args.out.is_dir() else args.out
        refstats.save(out, placeholder)
        print(f"{out}: placeholder, FID unavailable: {err}")
        return 0
    stats, info = reference_stats(protocol, args.dataset, nets, opts, only=[extractor])
    st = stats[extractor]
    st.meta["device"] = device_name(nets.device)
    out = args.out
    if out.is_dir() or str(out).endswith("/"):
        out = out / refstats.canonical_name(
            protocol, extractor, info["num_reference"], info["file_list_sha256"], st.meta["weights_sha256"]
        )
    refstats.save(out, st)
    print(f"{out}: {info['num_reference']} reference images, {extractor}, {info['seconds']:.1f} s")
    return 0
