"""`pgpis fid`: set-level metrics between two image folders, or a folder and cached statistics."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
Like `python -m pytorch_fid DIR1 DIR2`, under a named protocol: both sets are resized by the
protocol's rules (--images as generated images, a --reference folder as reference images) and fed
to the protocol's FID extractor(s) on --device. Each folder's statistics are cached (--cache-dir)
under a name encoding its files (names and byte sizes), the settings and the weights; a second run
reads them back. --reference may be a .npz from `pgpis refstats` (checked against the protocol) or
a plain pytorch-fid .npz (mu, sigma). The FID's name says what the reference was:
fid_<extractor>_folder, fid_<extractor>_<split> for refstats files, fid_<extractor>_npz otherwise.
Emulating protocols (cfld-*, pidm, gfla-dptn) take scipy's sqrtm as the reference scripts do;
pgpis-v1 the fast Cholesky/eigh route.

examples:
  pgpis fid --images outputs/mine --reference data/real_256x176/ --protocol pgpis-v1
  pgpis fid --images outputs/mine --reference reports/refstats/cfld-256.npz --protocol cfld-256 --out fid.json
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli._args import add_compute_arguments
    from bench.metrics.device import DEVICE_HELP
    from bench.metrics.protocols import PROTOCOLS

    p = sub.add_parser(
        "fid",
        help="FID between two image folders (or a folder and cached statistics) under a protocol",
        description="Set-level metrics (FID) between two image folders or a folder and a statistics .npz.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--images", required=True, type=Path, help="folder of .png/.jpg/.jpeg/.webp images")
    p.add_argument("--reference", required=True, type=Path, help="reference folder, or statistics FILE.npz")
    p.add_argument(
        "--protocol", default="pgpis-v1", choices=sorted(PROTOCOLS), help="protocol (default pgpis-v1)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON to write (schema: bench/metrics/metrics.schema.json)",
    )
    add_compute_arguments(p, "the FID extractors run", DEVICE_HELP)
    p.add_argument("--cache-dir", type=Path, default=None, help="statistics cache folder")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached statistics")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail if any metric is unavailable (without it: if none could be computed)",
    )
    p.add_argument(
        "--allow-unverified-weights",
        action="store_true",
        help="accept weights whose sha256 does not match (tests)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.errors import DataError
    from bench.io import check_outputs_writable
    from bench.metrics.device import resolve_device
    from bench.metrics.engine import EvalOptions
    from bench.metrics.outputs import write_outputs
    from bench.metrics.protocols import get_protocol
    from bench.metrics.setlevel import score_sets

    resolve_device(args.device)
    check_outputs_writable([args.out])
    opts = EvalOptions(
        batch_size=args.batch_size,
        workers=args.workers,
        strict=args.strict,
        allow_unverified_weights=args.allow_unverified_weights,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
        device=args.device,
    )
    record = score_sets(get_protocol(args.protocol), args.images, args.reference, opts)
    if not record["metrics"]:
        # Nothing was measured (every metric needs a network weight): a results file and a zero exit
        # would let a script carry on as if it had a FID.
        reasons = "; ".join(f"{name}: {reason}" for name, reason in record["unavailable"].items())
        raise DataError(f"no metric of {record['protocol']} could be computed, nothing written: {reasons}")
    if args.out is not None:
        write_outputs(record, [], args.out, None)
    print(f"protocol {record['protocol']}: {record['num_images']} images vs {record['reference']}")
    for name, value in record["metrics"].items():
        print(f"  {name:<22} {value:.6g}")
    for name, reason in record["unavailable"].items():
        print(f"  {name:<22} unavailable: {reason}")
    return 0
