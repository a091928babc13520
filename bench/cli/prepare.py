"""`pgpis prepare`: build train_highres/ and test_highres/ from DeepFashion's img_highres folder or zip."""

from __future__ import annotations

import argparse
import os

DESCRIPTION = """\
Build <out>/train_highres/ and <out>/test_highres/ from a DeepFashion In-shop img_highres folder
or zip (paths <GENDER>/<Category>/id_<8 digits>/<NN>_<k>_<view>.jpg), naming every image by the
flattening rule (as CFLD's generate_fashion_datasets.py). Only images listed in train.lst and
test.lst are taken. Every missing or unreadable image is reported by name in one error, and then
nothing is written; each split folder is built aside and renamed into place, so a rerun is safe
and a complete folder is left as it is. The images are licensed: request them (and the zip's
password) from the DeepFashion authors; see datasets/README.md.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prepare",
        help="build train_highres/ and test_highres/ from a DeepFashion img_highres folder or zip",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--images", required=True, help="the img_highres folder (holding MEN/ and WOMEN/) or img_highres.zip"
    )
    p.add_argument(
        "--splits",
        default=None,
        help="folder with train.lst and test.lst (and the split CSVs, copied into --out); default: --out",
    )
    p.add_argument("--out", required=True, help="dataset root to fill (e.g. datasets/deepfashion)")
    p.add_argument(
        "--link",
        choices=("hardlink", "copy"),
        default="hardlink",
        help="hardlink images from a folder when possible (saves disk; falls back to copying), or always copy",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the decode check of every image (faster; corrupt files then surface later)",
    )
    p.add_argument(
        "--password",
        default=os.environ.get("PGPIS_ZIP_PASSWORD"),
        help="password of a protected zip (default: $PGPIS_ZIP_PASSWORD); slow, unzipping yourself is faster",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.data.prepare import prepare

    report = prepare(
        args.images,
        args.splits or args.out,
        args.out,
        link=args.link,
        verify=not args.no_verify,
        password=args.password,
    )
    if report.skipped:
        print(
            f"pgpis prepare: {args.out}: train_highres/ and test_highres/ already hold every listed image; nothing to do"
        )
    else:
        counts = ", ".join(f"{split} {n}" for split, n in report.copied.items() if n)
        print(f"pgpis prepare: {args.out}: placed {counts} images ({report.method})")
    return 0
