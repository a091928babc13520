"""`pgpis report`: combine metrics files into one Markdown (and CSV) table."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._args import add_mlflow_arguments
from bench.errors import DataError

EPILOG = """\
input:
  metrics.json files written by `pgpis evaluate` (format: docs/architecture.md, "Metrics files"):
  {"protocol": ..., "protocol_settings": {...}, "method": ..., "num_images": N, "num_expected": N,
   "dropped": 0, "metrics": {"<name>": value}, "ci95": {"<name>": [lo, hi]},
   "unavailable": {"<name>": "<reason>"}, ...}
  A run is labelled by the folder holding its metrics.json (reports/<run>/metrics.json) or by
  the file stem (reports/<run>.json); --labels overrides.

output:
  A Markdown table: one row per run, one column per metric with ↑ (higher is better) or ↓
  (lower is better), rows sorted best first by --sort-by (default: the first metric column,
  in the order FID, KID, LPIPS, SSIM, PSNR, others), the protocol named in the caption, the
  number of images counted, and "n/a" with a footnote giving the reason for a metric a run
  could not compute. --csv writes the same rows with CI bounds and reasons as columns.
  Files are written atomically (temporary file + rename).

  Files evaluated under different protocols are refused: their numbers are not comparable.
  --allow-mixed puts them in one table anyway, with a protocol column and a warning caption.

examples:
  pgpis report --metrics reports/copy-source/metrics.json reports/pose-warp/metrics.json \\
      --out reports/metrics.md --csv reports/metrics.csv
  pgpis report --metrics a.json b.json --labels baseline ours --sort-by lpips_alex --out t.md
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="combine metrics files into one table per protocol (Markdown, CSV, MLflow)",
        description="Combine metrics.json files of several runs into one table per protocol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        type=Path,
        metavar="JSON",
        help="metrics files, one per run, or folders of them (every *.json inside, in name order)",
    )
    p.add_argument("--out", required=True, type=Path, help="Markdown file to write, e.g. reports/metrics.md")
    p.add_argument("--csv", type=Path, help="also write the table as CSV here")
    p.add_argument(
        "--labels",
        nargs="+",
        metavar="LABEL",
        help="row labels, one per metrics file (default: run folder names)",
    )
    p.add_argument(
        "--sort-by",
        metavar="METRIC",
        help="metric to sort rows by, best first (default: first metric column)",
    )
    p.add_argument("--title", default="Metrics", help="heading of the table (default: Metrics)")
    p.add_argument(
        "--ci", action="store_true", help="show bootstrap 95%% confidence intervals in the Markdown cells"
    )
    p.add_argument(
        "--allow-mixed", action="store_true", help="allow files from different protocols in one table"
    )
    p.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write one self-contained HTML page: the table and the PNG figures of --figures, embedded",
    )
    p.add_argument(
        "--figures",
        nargs="+",
        default=[],
        type=Path,
        metavar="PNG",
        help="figures for --html: PNG files, or folders of them (every *.png inside, in name order)",
    )
    add_mlflow_arguments(p, "each run's metrics")
    p.add_argument(
        "--attach",
        nargs="+",
        default=[],
        type=Path,
        metavar="PATH",
        help="with MLflow: also attach these files or folders (e.g. reports/figures) to every run, under report/",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.io import write_text_atomic
    from bench.report.html import report_html
    from bench.report.results import load_runs
    from bench.report.tables import build_table, to_csv, to_markdown

    missing = [str(p) for p in args.attach if not p.exists()]
    if missing:
        raise DataError(f"--attach: {', '.join(missing)} not found; run `pgpis figures` first or drop it")
    runs = load_runs(args.metrics, args.labels)
    table = build_table(runs, allow_mixed=args.allow_mixed, sort_by=args.sort_by)
    # Both texts are built before anything is written, so an error leaves earlier reports untouched.
    markdown = to_markdown(table, title=args.title, with_ci=args.ci)
    csv_text = to_csv(table) if args.csv else None
    html_text = report_html(table, _figures(args.figures), args.title, args.ci) if args.html else None
    write_text_atomic(args.out, markdown)
    if csv_text is not None:
        write_text_atomic(args.csv, csv_text)
    if html_text is not None:
        write_text_atomic(args.html, html_text)
    _log_to_mlflow(args, runs)
    print(
        f"{args.out}: {len(table.runs)} run(s), {len(table.metrics)} metric(s), protocol {', '.join(table.protocols)}"
    )
    return 0


def _figures(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.glob("*.png"))
        elif path.is_file() and path.suffix.lower() == ".png":
            found.append(path)
        else:
            raise DataError(
                f"--figures: {path} is neither a PNG file nor a folder; run `pgpis figures` first"
            )
    return found


def _log_to_mlflow(args: argparse.Namespace, runs: list) -> None:
    """One MLflow run per evaluated run: protocol settings as params, metrics and CIs as metrics,
    the metrics file and the table as artifacts. Tracking never changes the table."""
    from bench.tracking import log_metrics, mlflow_run, tracking_uri

    uri = tracking_uri(args.mlflow)
    if not uri:
        return
    import mlflow

    for run in runs:
        params = {"protocol": run.protocol, "method": run.method, "protocol_settings": run.protocol_settings}
        with mlflow_run(uri, args.experiment, run.label, params):
            log_metrics(run.metrics)
            log_metrics({f"{k}.ci95_lo": v[0] for k, v in run.ci95.items()})
            log_metrics({f"{k}.ci95_hi": v[1] for k, v in run.ci95.items()})
            if run.unavailable:
                mlflow.set_tags({f"unavailable.{k}": v[:5000] for k, v in run.unavailable.items()})
            mlflow.log_artifact(str(run.path))
            mlflow.log_artifact(str(args.out))
            if args.html:
                mlflow.log_artifact(str(args.html))
            for path in args.attach:
                if path.is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=f"report/{path.name}")
                else:
                    mlflow.log_artifact(str(path), artifact_path="report")
    print(f"logged {len(runs)} run(s) to MLflow at {uri} (experiment {args.experiment!r})")
