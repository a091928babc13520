"""`pgpis fetch DATASET`: make a dataset root available.

`deepfashion` gets and verifies the public split files (images from a local folder or zip);
`synthetic` renders the embedded synthetic set (same as `pgpis synth`). One command for both lets
the pipeline's first stage switch datasets through params.yaml alone.
"""

from __future__ import annotations

import argparse
import os

DESCRIPTION = """\
Make a dataset root available for the pipeline.

  pgpis fetch synthetic --out datasets/synthetic [synth options]   render the embedded set
  pgpis fetch deepfashion --out datasets/deepfashion [--images IMG] the real benchmark

See `pgpis fetch deepfashion --help` and `pgpis fetch synthetic --help`.
"""

DEEPFASHION_DESCRIPTION = """\
Download the public DeepFashion split files (fasion-resize-{pairs,annotation}-{train,test}.csv,
train.lst, test.lst) from the DPTN/CFLD Google Drive folder (through gdown) into --out, verify
them and record their sha256 in <out>/SPLITS.sha256.json. The two lists must match their
published sha256; the CSVs must parse and agree with the lists; a mismatch is refused and
nothing is written. Files already present and verified are not downloaded again: offline, a
complete root is a no-op. DeepFashion's images are licensed and never downloaded: pass your
img_highres folder or zip with --images to also run `pgpis prepare` (see datasets/README.md).
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli.synth import DESCRIPTION as SYNTH_DESCRIPTION
    from bench.cli.synth import add_synth_arguments

    p = sub.add_parser(
        "fetch",
        help="make a dataset available: the real DeepFashion split (verified) or the synthetic set",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    datasets = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    syn = datasets.add_parser(
        "synthetic",
        help="render the embedded synthetic dataset (as `pgpis synth`)",
        description=SYNTH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_synth_arguments(syn)
    syn.set_defaults(func=_run_synthetic)

    df = datasets.add_parser(
        "deepfashion",
        help="get and verify DeepFashion's split files; images from your local img_highres",
        description=DEEPFASHION_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    df.add_argument("--out", required=True, help="dataset root (e.g. datasets/deepfashion)")
    df.add_argument(
        "--images",
        default=None,
        help="your DeepFashion img_highres folder or zip; when given, `pgpis prepare` runs after the fetch",
    )
    df.add_argument(
        "--base-url",
        default=None,
        help="download <BASE_URL>/<file name> from this HTTP mirror instead of Google Drive",
    )
    df.add_argument(
        "--link", choices=("hardlink", "copy"), default="hardlink", help="as `pgpis prepare --link`"
    )
    df.add_argument(
        "--password",
        default=os.environ.get("PGPIS_ZIP_PASSWORD"),
        help="password of a protected images zip (default: $PGPIS_ZIP_PASSWORD)",
    )
    df.set_defaults(func=run)
    return p


def _run_synthetic(args: argparse.Namespace) -> int:
    from bench.cli.synth import run as run_synth

    return run_synth(args)


def run(args: argparse.Namespace) -> int:
    from bench.data.fetch import RECORD, fetch_deepfashion

    report = fetch_deepfashion(args.out, base_url=args.base_url)
    if report.nothing_to_do:
        print(
            f"pgpis fetch: {args.out}: all split files present and verified against {RECORD}; nothing downloaded"
        )
    elif report.downloaded:
        print(
            f"pgpis fetch: {args.out}: downloaded and verified {', '.join(report.downloaded)}; hashes in {RECORD}"
        )
    else:
        print(f"pgpis fetch: {args.out}: split files present; verified and recorded in {RECORD}")
    if args.images is None:
        print(
            "pgpis fetch: images not included (licensed): get img_highres.zip from the DeepFashion authors "
            f"(datasets/README.md), then run `pgpis prepare --images <img_highres> --out {args.out}`"
        )
        return 0
    from bench.data.prepare import prepare

    result = prepare(args.images, args.out, args.out, link=args.link, password=args.password)
    if result.skipped:
        print(f"pgpis fetch: {args.out}: images already prepared; nothing to do")
    else:
        print(
            f"pgpis fetch: {args.out}: prepared train {result.copied['train']}, test {result.copied['test']} images"
        )
    return 0
