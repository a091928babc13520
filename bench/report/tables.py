"""Metrics tables: one row per evaluated run, one column per metric, Markdown and CSV.

Each metric column carries ↑ (higher is better) or ↓ (lower is better); rows are sorted best
first by their mean rank over the metrics every run has (shown in a column; one metric wins no
table alone), or by one metric on request; the caption names the protocol, because numbers from different protocols
are not comparable (a table mixing them is refused unless explicitly allowed, and then every row
names its protocol). A metric a run could not compute says "not computed" with a footnote giving why
(never "n/a", which reads as "not applicable").
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from bench.errors import ConfigError
from bench.metrics import registry
from bench.report.results import RunMetrics

NOT_COMPUTED = "not computed"  # the cell of a metric a run could not compute (its footnote says why)


def direction(name: str, overrides: dict[str, str] | None = None) -> str | None:
    """``"higher"``, ``"lower"`` or ``None`` (unknown) for a results key: the results file's own
    ``directions`` first, then the metric registry's declaration (bench/metrics/registry.py)."""
    if overrides and overrides.get(name) in ("higher", "lower"):
        return overrides[name]
    return registry.direction(name)


def arrow(dirn: str | None) -> str:
    return {"higher": " ↑", "lower": " ↓"}.get(dirn or "", "")


def format_value(name: str, value: float) -> str:
    return f"{value:.{registry.decimals(name)}f}"


@dataclass
class Table:
    protocols: list[str]
    runs: list[RunMetrics]  # sorted, best first
    metrics: list[str]  # column order
    directions: dict[str, str | None]
    sort_by: str | None  # a metric, or None: sorted by mean rank over ``ranked``
    ranked: list[str] = field(default_factory=list)  # the metrics the mean rank averages
    mean_rank: dict[str, float] = field(default_factory=dict)  # run label -> mean rank (1 = best)


def _column_order(names: set[str]) -> list[str]:
    # The registry's declaration order of metric families (fid, ..., lpips, ssim, psnr, ...), then the rest
    # alphabetically.
    order = registry.family_order()

    def key(name: str) -> tuple[int, str]:
        fam = registry.family(name)
        return (order.index(fam) if fam in order else len(order)), name

    return sorted(names, key=key)


def _refuse_unequal_settings(runs: list[RunMetrics]) -> None:
    """Runs under one protocol name must have equal settings: the caption shows one set for them all
    (e.g. one run scored with --emulate-drop-remainder 64 and one without are not comparable)."""
    from bench.manifest import _differences

    first: dict[str, RunMetrics] = {}
    for run in runs:
        ref = first.setdefault(run.protocol, run)
        diffs = _differences(ref.protocol_settings, run.protocol_settings)
        if diffs:
            shown = "; ".join(d.replace(" in the folder, now ", " vs ") for d in diffs[:5])
            raise ConfigError(
                f"{ref.path} and {run.path} both use protocol {run.protocol!r} but with different settings "
                f"({shown}); their numbers are not comparable. Rescore them under the same settings, or make one "
                "table per setting"
            )


def build_table(runs: list[RunMetrics], allow_mixed: bool = False, sort_by: str | None = None) -> Table:
    """Check the runs can share a table, choose columns and sort the rows best first."""
    if not runs:
        raise ConfigError("no metrics files given; pass at least one with --metrics")
    protocols = sorted({r.protocol for r in runs})
    if len(protocols) > 1 and not allow_mixed:
        listing = "; ".join(f"{r.path}: {r.protocol}" for r in runs)
        raise ConfigError(
            f"the metrics files use different protocols ({', '.join(protocols)}): {listing}. Numbers from "
            "different protocols are not comparable; make one table per protocol, or pass --allow-mixed to "
            "show them side by side with a protocol column."
        )
    _refuse_unequal_settings(runs)
    names = {n for r in runs for n in (*r.metrics, *r.unavailable)}
    metrics = _column_order(names)
    overrides: dict[str, str] = {}
    for r in runs:
        overrides.update(r.directions)
    directions = {n: direction(n, overrides) for n in metrics}
    if sort_by is not None and sort_by not in names:
        raise ConfigError(
            f"--sort-by {sort_by!r} is not a metric of these files; choose one of {', '.join(metrics)}"
        )
    ranked = [n for n in metrics if directions[n] and all(n in r.metrics for r in runs)]
    mean_rank = mean_ranks(runs, ranked, directions)
    ordered = list(runs)
    if sort_by is not None:
        sign = -1.0 if directions.get(sort_by) == "higher" else 1.0
        # Runs without the sorting metric go last, keeping the order they were given in.
        ordered.sort(key=lambda r: (sort_by not in r.metrics, sign * r.metrics.get(sort_by, 0.0)))
    elif mean_rank:
        ordered.sort(key=lambda r: mean_rank[r.label])  # stable: ties keep the given order
    return Table(protocols, ordered, metrics, directions, sort_by, ranked, mean_rank)


def mean_ranks(
    runs: list[RunMetrics], metrics: list[str], directions: dict[str, str | None]
) -> dict[str, float]:
    """Run label -> its rank averaged over ``metrics`` (1 = best; tied values share their mean rank)."""
    if not metrics or len({r.label for r in runs}) != len(runs):
        return {}
    total = {r.label: 0.0 for r in runs}
    for name in metrics:
        sign = -1.0 if directions[name] == "higher" else 1.0
        values = sorted(sign * r.metrics[name] for r in runs)
        for r in runs:
            v = sign * r.metrics[name]
            first, last = values.index(v), len(values) - values[::-1].index(v) - 1
            total[r.label] += (first + last) / 2 + 1
    return {label: t / len(metrics) for label, t in total.items()}


def _count(run: RunMetrics) -> str:
    if run.num_images is None:
        return "?"
    if run.num_expected is not None and run.num_expected != run.num_images:
        return f"{run.num_images}/{run.num_expected}"
    return str(run.num_images)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class Layout:
    """The table's cells, caption and footnotes, before any format (Markdown or HTML) is chosen."""

    header: list[str]
    numeric: int  # the last ``numeric`` columns hold numbers (right-aligned)
    rows: list[list[tuple[str, list[int]]]]  # (text, its footnote numbers)
    notes: dict[str, int]  # footnote text -> number
    caption: str  # protocol names in `backticks`
    settings: list[tuple[str, str]] | None  # the protocol settings (name, value), single-protocol table


def layout(table: Table, with_ci: bool = False) -> Layout:
    mixed = len(table.protocols) > 1
    notes: dict[str, int] = {}

    def note(text: str) -> int:
        return notes.setdefault(text, len(notes) + 1)

    with_rank = table.sort_by is None and bool(table.mean_rank)
    header = ["Run", "Method"] + (["Protocol"] if mixed else []) + ["Images"]
    header += (["Mean rank"] if with_rank else []) + [
        f"{m}{arrow(table.directions[m])}" for m in table.metrics
    ]
    rows = []
    for run in table.runs:
        images_notes = []
        if run.num_expected is not None and run.num_images is not None and run.num_images < run.num_expected:
            images_notes.append(
                note(
                    f"{run.label}: {run.num_expected - run.num_images} generated image(s) missing, scored with --allow-missing."
                )
            )
        if run.dropped:
            images_notes.append(
                note(
                    f"{run.label}: {run.dropped} image(s) dropped by the protocol's batching (a reference script's quirk)."
                )
            )
        row = [(run.label, []), (run.method or "?", [])] + ([(run.protocol, [])] if mixed else [])
        row.append((_count(run), images_notes))
        if with_rank:
            row.append((f"{table.mean_rank[run.label]:.2f}", []))
        for m in table.metrics:
            if m in run.metrics:
                text = format_value(m, run.metrics[m])
                if with_ci and m in run.ci95:
                    lo, hi = run.ci95[m]
                    text += f" [{format_value(m, lo)}, {format_value(m, hi)}]"
                elif with_ci and m in run.std:
                    text += f" ± {format_value(m, run.std[m])}"
                row.append((text, []))
            else:
                reason = run.unavailable.get(m, "not computed by this run")
                row.append((NOT_COMPUTED, [note(f"{m}: {reason}")]))
        rows.append(row)

    proto = ", ".join(f"`{p}`" for p in table.protocols)
    caption = f"Protocol{'s' if mixed else ''} {proto}"
    if mixed:
        caption += " (mixed on request: numbers from different protocols are NOT comparable)"
    if table.sort_by:
        better = "higher" if table.directions[table.sort_by] == "higher" else "lower"
        caption += f"; rows sorted best first by {table.sort_by} ({better} is better)"
    elif with_rank:
        caption += (
            f"; rows sorted best first by mean rank (1 = best) over the {len(table.ranked)} metric(s) "
            f"every run has: {', '.join(table.ranked)}"
        )
    caption += ". ↑ higher is better, ↓ lower is better. Images = generated images counted."
    if with_ci:
        caption += " Brackets: bootstrap 95% confidence interval."
        if any(m in r.std for r in table.runs for m in table.metrics):
            caption += " ±: standard deviation over the metric's random subsets (KID)."
    unknown = [m for m in table.metrics if table.directions[m] is None]
    if unknown:
        caption += f" Direction unknown for: {', '.join(unknown)}."
    settings = None
    if not mixed and table.runs[0].protocol_settings:
        settings = settings_rows(table.runs[0].protocol_settings)
    return Layout(header, len(table.metrics) + with_rank, rows, notes, caption, settings)


def settings_rows(settings: dict) -> list[tuple[str, str]]:
    """Protocol settings as (name, readable value) rows: lists joined, sizes as HxW, notes apart."""

    def text(key: str, value: object) -> str:
        if value is None:
            return "none"
        if (
            isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int) for v in value)
            and "size" in key
        ):
            return f"{value[0]}x{value[1]}"
        if isinstance(value, list):
            return "; ".join(str(v) for v in value) if key == "notes" else ", ".join(str(v) for v in value)
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        return str(value)

    first = [k for k in ("name", "description") if k in settings]
    rest = sorted(k for k in settings if k not in first and k != "notes")
    return [(k, text(k, settings[k])) for k in [*first, *rest, *(["notes"] if "notes" in settings else [])]]


def to_markdown(table: Table, title: str = "Metrics", with_ci: bool = False, note_prefix: str = "") -> str:
    """The table as GitHub Markdown, with its caption and footnotes (``[^<note_prefix><n>]``, so
    several tables can share one document)."""
    lay = layout(table, with_ci)
    lines = [
        "| " + " | ".join(_cell(h) for h in lay.header) + " |",
        "|" + "|".join(["---"] * (len(lay.header) - lay.numeric) + ["---:"] * lay.numeric) + "|",
    ]
    for row in lay.rows:
        cells = [text + "".join(f"[^{note_prefix}{n}]" for n in numbers) for text, numbers in row]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    out = [f"## {title}", "", lay.caption, "", *lines, ""]
    if lay.settings:
        out += ["Protocol settings:", "", "| Setting | Value |", "|---|---|"]
        out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in lay.settings] + [""]
    for text, number in lay.notes.items():
        out.append(f"[^{note_prefix}{number}]: {text}")
    return "\n".join(out).rstrip() + "\n"


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """``value`` as a spreadsheet shows it, never as a formula: text cells starting with a formula
    prefix get a leading apostrophe. Numbers are left alone (a negative number is data)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def to_csv(table: Table) -> str:
    """Machine-readable twin of the Markdown table: one row per run, plus CI and reason columns."""
    buf = io.StringIO()
    fields = [
        "run",
        "method",
        "protocol",
        "num_images",
        "num_expected",
        "dropped",
        "allow_missing",
        "metrics_file",
    ]
    with_std = {m for m in table.metrics if any(m in r.std for r in table.runs)}
    for m in table.metrics:
        fields += [
            m,
            f"{m}_ci95_low",
            f"{m}_ci95_high",
            *([f"{m}_std"] if m in with_std else []),
            f"{m}_unavailable",
        ]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for run in table.runs:
        row: dict[str, object] = {
            "run": run.label,
            "method": run.method or "",
            "protocol": run.protocol,
            "num_images": "" if run.num_images is None else run.num_images,
            "num_expected": "" if run.num_expected is None else run.num_expected,
            "dropped": run.dropped,
            "allow_missing": run.allow_missing,
            "metrics_file": str(run.path),
        }
        for m in table.metrics:
            row[m] = repr(run.metrics[m]) if m in run.metrics else ""
            lo, hi = run.ci95.get(m, ("", ""))
            row[f"{m}_ci95_low"], row[f"{m}_ci95_high"] = lo, hi
            if m in with_std:
                row[f"{m}_std"] = run.std.get(m, "")
            row[f"{m}_unavailable"] = "" if m in run.metrics else run.unavailable.get(m, "not computed")
        text = ("run", "method", "protocol", "metrics_file")
        writer.writerow(
            {k: csv_safe(v) if k in text or k.endswith("_unavailable") else v for k, v in row.items()}
        )
    return buf.getvalue()
