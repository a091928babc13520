"""`pgpis figures`: the qualitative comparison grid and the metrics chart."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._args import image_size

DESCRIPTION = """\
Draw the report's figures into --out:
  comparison.png   one row per test pair: source | target pose | ground truth | each run
  comparison.json  which pairs and runs the grid shows, in order (so the figure can be traced)
  metrics_<protocol>.png  (with --metrics) per protocol, each metric every run has, bars with
                   bootstrap 95% intervals; a metric some run lacks is named under the chart with the reason
  gallery_<run>.png (with --per-image) each run's best and worst pairs by --gallery-metric as scored
                   under --gallery-protocol: source | target pose | ground truth | the run's image
Runs are folders written by `pgpis generate` (or a parent of such folders, e.g. reports/generated);
the column title is the folder name unless --labels. Pairs are drawn with --seed among the test pairs
that every run has an image for; a run with missing images is refused unless --allow-missing.
Every file is written atomically."""

EPILOG = """\
examples:
  pgpis figures --dataset datasets/synthetic --generated reports/generated --metrics reports/metrics \\
      --out reports/figures
  pgpis figures --dataset data/deepfashion --generated outputs/cfld outputs/pidm --labels CFLD PIDM \\
      --pairs <from-stem>_2_<to-stem> ... --out figs
"""


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options that name the runs and the dataset (shared with `pgpis user-study make`)."""
    p.add_argument("--dataset", required=True, type=Path, help="dataset root (DeepFashion on-disk format)")
    p.add_argument(
        "--split", default="test", choices=("train", "test"), help="split of the pairs (default: test)"
    )
    p.add_argument(
        "--generated",
        nargs="+",
        required=True,
        type=Path,
        metavar="DIR",
        help="folders of generated images, or a parent of such folders (every subfolder with a manifest.json)",
    )
    p.add_argument(
        "--labels", nargs="+", metavar="LABEL", help="one name per run folder (default: folder names)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the choice of pairs (default: %(default)s)")
    p.add_argument(
        "--size",
        type=image_size,
        default=(256, 176),
        metavar="HxW",
        help="size every image is shown at (default: 256x176)",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="choose among the pairs every run has an image for instead of refusing incomplete runs",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "figures",
        help="draw the comparison grid (source | pose | truth | runs) and the metrics chart",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="folder for the figures, e.g. reports/figures")
    p.add_argument("--num-pairs", type=int, default=6, help="rows of the grid (default: %(default)s)")
    p.add_argument(
        "--pairs",
        nargs="+",
        metavar="PAIR_ID",
        help="show these pairs, in this order, instead of a seeded choice",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="metrics files of `pgpis evaluate`, or folders of them: also draw metrics_<protocol>.png",
    )
    p.add_argument(
        "--per-image",
        type=Path,
        metavar="DIR",
        help="per-image CSVs of `pgpis evaluate`, DIR/<protocol>/<run>.csv or DIR/<run>.csv: also draw "
        "gallery_<run>.png",
    )
    p.add_argument(
        "--gallery-protocol",
        default=None,
        metavar="NAME",
        help="with --per-image: the protocol subfolder whose scores rank the pairs (default: none, DIR/<run>.csv)",
    )
    p.add_argument(
        "--gallery-metric",
        default="ssim_g15_dr",
        metavar="METRIC",
        help="per-image metric ranking the gallery's pairs (default: %(default)s)",
    )
    p.add_argument(
        "--gallery-pairs",
        type=int,
        default=3,
        metavar="K",
        help="best and worst pairs shown per run (default: 3)",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.data.deepfashion import validate_dataset  # the same dataset rules as generate

    validate_dataset(args.dataset, args.split)
    from bench.data.deepfashion import DeepFashionDataset
    from bench.errors import ConfigError
    from bench.io import save_png_atomic, write_bytes_atomic, write_json_atomic
    from bench.report.figures import best_and_worst, comparison_grid, gallery, metrics_chart, read_scores
    from bench.report.generated import choose_pairs, complete_pairs, distinct_pairs, expand_generated
    from bench.report.results import by_protocol, load_runs

    dataset = DeepFashionDataset(args.dataset, args.split)
    runs = expand_generated(args.generated, args.labels)
    usable, left_out = complete_pairs(dataset, runs, args.allow_missing)
    pairs = choose_pairs(usable, args.num_pairs, args.seed, args.pairs)
    # The charts and galleries are drawn (and their inputs checked) before anything is written.
    charts: dict[str, bytes] = {}
    if args.metrics:
        for protocol, group in by_protocol(load_runs(args.metrics)).items():
            charts[f"metrics_{protocol}.png"] = metrics_chart(group)
    galleries = {}
    if args.per_image is not None:
        if args.gallery_pairs < 1:
            raise ConfigError("--gallery-pairs must be >= 1")
        by_id = {p.pid: p for p in distinct_pairs(dataset)}
        folder = args.per_image / args.gallery_protocol if args.gallery_protocol else args.per_image
        for run in runs:
            scores = [
                s for s in read_scores(folder / f"{run.label}.csv", args.gallery_metric) if s[0] in by_id
            ]
            chosen = best_and_worst(scores, args.gallery_metric, args.gallery_pairs)
            galleries[f"gallery_{run.label}.png"] = gallery(
                dataset, run, by_id, chosen, args.gallery_metric, tuple(args.size)
            )
    grid = comparison_grid(dataset, pairs, runs, tuple(args.size), progress=not args.no_progress)
    save_png_atomic(args.out / "comparison.png", grid)
    write_json_atomic(
        args.out / "comparison.json",
        {
            "dataset": str(args.dataset),
            "split": args.split,
            "columns": ["source", "target pose", "ground truth", *(r.label for r in runs)],
            "runs": {r.label: str(r.folder) for r in runs},
            "rows": [p.pid for p in pairs],
            "seed": None if args.pairs else args.seed,
            "size": list(args.size),
            "pairs_left_out_for_missing_images": left_out,
        },
    )
    print(f"{args.out / 'comparison.png'}: {len(pairs)} pair(s) x {len(runs)} run(s)")
    for name, chart in charts.items():
        write_bytes_atomic(args.out / name, chart)
        print(f"{args.out / name}: metrics chart")
    for name, image in galleries.items():
        save_png_atomic(args.out / name, image)
        print(f"{args.out / name}: best and worst {args.gallery_pairs} pair(s) by {args.gallery_metric}")
    return 0
