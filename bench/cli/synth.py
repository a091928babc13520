"""`pgpis synth`: write the embedded synthetic dataset in DeepFashion's on-disk format."""

from __future__ import annotations

import argparse

from bench.cli._args import image_size

DESCRIPTION = """\
Write a complete synthetic dataset root in exactly DeepFashion's on-disk format
(fasion-resize-{pairs,annotation}-{train,test}.csv, train.lst, test.lst, train_highres/,
test_highres/) plus DATASET.json with the settings and counts. Persons are drawn at real
DeepFashion test poses (datasets/poses/), each identity with its own skin, hair, clothing colours
and patterns; pairs are all ordered pairs of an identity's images; train and test identities
are disjoint. The files are byte-identical for the same settings. The folder is built aside and
renamed into place; a folder made with other settings is refused, never mixed.
"""


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    """The synthetic generator's options (shared by `pgpis synth` and `pgpis fetch synthetic`)."""
    p.add_argument("--out", required=True, help="dataset root to create (e.g. datasets/synthetic)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    p.add_argument(
        "--train-identities", type=int, default=400, help="persons in the train split (default: %(default)s)"
    )
    p.add_argument(
        "--test-identities", type=int, default=12, help="persons in the test split (default: %(default)s)"
    )
    p.add_argument(
        "--images-per-identity",
        type=int,
        default=4,
        help="images (poses/views) per person; each person gives n*(n-1) pairs (default: %(default)s)",
    )
    p.add_argument(
        "--size", type=image_size, default=(256, 176), metavar="HxW", help="image size (default: 256x176)"
    )
    p.add_argument(
        "--jpeg-quality", type=int, default=95, help="JPEG quality of the images (default: %(default)s)"
    )
    p.add_argument(
        "--poses",
        default=None,
        help="annotation CSV to take real poses from (default: datasets/poses/fasion-resize-annotation-test.csv)",
    )


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synth",
        help="write the embedded synthetic dataset in DeepFashion's on-disk format",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_synth_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.data.synth import DEFAULT_POSES, SynthSettings, synthesize
    from bench.io import check_writable

    check_writable(
        [f"{args.out}/DATASET.json"]
    )  # the dataset is built beside --out: fail now, not at the end

    settings = SynthSettings(
        seed=args.seed,
        train_identities=args.train_identities,
        test_identities=args.test_identities,
        images_per_identity=args.images_per_identity,
        size=tuple(args.size),
        jpeg_quality=args.jpeg_quality,
    )
    info = synthesize(args.out, settings, args.poses or DEFAULT_POSES)
    c = info["counts"]
    print(
        f"pgpis synth: wrote {args.out}: train {c['train']['images']} images / {c['train']['pairs']} pairs, "
        f"test {c['test']['images']} images / {c['test']['pairs']} pairs (seed {settings.seed})"
    )
    return 0
