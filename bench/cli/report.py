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
  Markdown: a banner naming every metric that could not be computed and the command that computes
  it; one table per protocol (one row per run, one column per metric with ↑ higher is better or ↓
  lower is better, rows sorted best first by mean rank over the metrics every run has, shown in a
  column, or by --sort-by; the number of images counted; "not computed" with a footnote giving the
  reason; the protocol's settings as a table; paper-reported numbers beside reproduced ones for
  methods with published values), then the protocol-sensitivity table (the same run under each
  protocol, side by side). --csv writes the rows with CI bounds and reasons as columns (cells never
  start a spreadsheet formula); --html one self-contained page with the figures; --scores the
  numbers alone (dvc metrics); --plots the chart data (dvc plots). Files are written atomically.

  A folder of metrics files may hold one subfolder per protocol (reports/metrics/<protocol>/<run>.json).
  --allow-mixed puts several protocols in one Markdown table instead, with a protocol column and a
  warning caption (their numbers are not comparable).

  With --mlflow (or MLFLOW_TRACKING_URI): one experiment per dataset and protocol, a parent run per
  report and a child per method run, found again by a deterministic key on the next report
  (README.md, "MLflow").

examples:
  pgpis report --metrics reports/copy-source/metrics.json reports/pose-warp/metrics.json \\
      --out reports/metrics.md --csv reports/metrics.csv
  pgpis report --metrics a.json b.json --labels baseline ours --sort-by lpips_alex --out t.md
  pgpis report --metrics reports/metrics --out reports/metrics.md --html reports/index.html \
      --figures reports/figures --mlflow sqlite:///mlflow.db --user-study-scores scores.json
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
        help="metric to sort rows by, best first (default: mean rank over the metrics every run has)",
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
    p.add_argument(
        "--scores",
        type=Path,
        metavar="DIR",
        help="also write the numbers alone, DIR/<protocol>/<run>.json ({metric: value}), for `dvc metrics show`",
    )
    p.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="also write the chart data, DIR/<protocol>/<metric>.csv (run, value, ci95_low, ci95_high), for "
        "`dvc plots show/diff`",
    )
    p.add_argument(
        "--user-study-scores",
        type=Path,
        metavar="JSON",
        help="with MLflow: log these `pgpis user-study score` results into the same child runs as metrics",
    )
    p.add_argument(
        "--per-image",
        type=Path,
        metavar="DIR",
        help="with MLflow: per-image CSVs to attach, DIR/<protocol>/<run>.csv (as the pipeline writes them)",
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
    from bench.report.document import build_document, plot_data, scores, scores_json
    from bench.report.html import report_html
    from bench.report.markdown import document_markdown
    from bench.report.results import load_runs
    from bench.report.tables import build_table, to_markdown

    missing = [str(p) for p in args.attach if not p.exists()]
    if missing:
        raise DataError(f"--attach: {', '.join(missing)} not found; run `pgpis figures` first or drop it")
    runs = load_runs(args.metrics, args.labels)
    protocols = sorted({r.protocol for r in runs})
    if args.allow_mixed and len(protocols) > 1:
        # One table with a protocol column, on request: the old behaviour, kept for comparisons by hand.
        table = build_table(runs, allow_mixed=True, sort_by=args.sort_by)
        markdown = to_markdown(table, title=args.title, with_ci=args.ci)
        doc = None
    else:
        doc = build_document(runs, sort_by=args.sort_by)
        markdown = document_markdown(doc, title=args.title, with_ci=args.ci)
        table = None
    # Every text is built before anything is written, so an error leaves earlier reports untouched.
    csv_text = _csv(doc, table) if args.csv else None
    html_text = None
    if args.html:
        if doc is None:
            raise DataError("--html shows one table per protocol; drop --allow-mixed to write it")
        html_text = report_html(doc, _figures(args.figures), args.title, args.ci)
    files: dict[Path, str] = {args.out: markdown}
    if csv_text is not None:
        files[args.csv] = csv_text
    if html_text is not None:
        files[args.html] = html_text
    if doc is not None and args.scores:
        for protocol, per_run in scores(doc).items():
            for label, values in per_run.items():
                files[args.scores / protocol / f"{label}.json"] = scores_json(values)
    if doc is not None and args.plots:
        for protocol, per_metric in plot_data(doc).items():
            for metric, text in per_metric.items():
                files[args.plots / protocol / f"{metric}.csv"] = text
    _write_all(files, [d for d in (args.scores, args.plots) if d is not None and doc is not None])
    if doc is not None:
        from bench.report.mlflow_log import log_report

        log_report(args, doc, runs)
    tables = doc.tables.values() if doc is not None else [table]
    print(
        f"{args.out}: {len(runs)} scored run(s), {len(protocols)} protocol(s) ({', '.join(protocols)}), "
        f"{sum(len(t.metrics) for t in tables)} metric column(s)"
    )
    return 0


def _csv(doc, table) -> str:  # noqa: ANN001 - one of the two is None
    from bench.report.tables import to_csv

    if doc is None:
        return to_csv(table)
    # One CSV for every protocol: the tables stacked (same columns per protocol, a protocol column).
    parts = [to_csv(t) for t in doc.tables.values()]
    if len(parts) == 1:
        return parts[0]
    import csv
    import io

    rows: list[dict[str, str]] = []
    fields: list[str] = []
    for text in parts:
        reader = csv.DictReader(io.StringIO(text))
        for name in reader.fieldnames or []:
            if name not in fields:
                fields.append(name)
        rows.extend(reader)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _write_all(files: dict[Path, str], replaced_dirs: list[Path]) -> None:
    """Write every file; folders the report owns (--scores, --plots) hold only this run's files."""
    import shutil

    from bench.io import write_text_atomic

    for folder in replaced_dirs:
        if folder.exists():
            for old in folder.rglob("*"):
                if old.is_file() and old not in files:
                    old.unlink()
            for sub in sorted((d for d in folder.rglob("*") if d.is_dir()), reverse=True):
                if not any(sub.iterdir()):
                    shutil.rmtree(sub)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)


def _figures(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(path.glob("*.png"), key=_figure_order)
        elif path.is_file() and path.suffix.lower() == ".png":
            found.append(path)
        else:
            raise DataError(
                f"--figures: {path} is neither a PNG file nor a folder; run `pgpis figures` first"
            )
    return found


def _figure_order(path: Path) -> tuple[int, str]:
    # The page reads: the metrics charts, the comparison grid, then the galleries.
    kinds = ("metrics", "comparison", "gallery")
    kind = path.stem.split("_", 1)[0]
    return (kinds.index(kind) if kind in kinds else len(kinds), path.name)
