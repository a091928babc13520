"""The whole report, before any format: a banner naming what could not be computed, one table per
protocol (with its settings and the paper-reported numbers beside the reproduced ones), and the
protocol-sensitivity table (the same run's number under each protocol, side by side). Also the
numbers alone for `dvc metrics` and the chart data for `dvc plots`."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field

from bench.errors import ConfigError
from bench.report.published import Comparison, comparisons
from bench.report.results import RunMetrics, by_protocol
from bench.report.tables import NOT_COMPUTED, Table, build_table, format_value

_FETCH = re.compile(r"pgpis fetch-weights ([A-Za-z0-9_ -]+?)`")


@dataclass
class Missing:
    """One metric some runs could not compute, and why."""

    metric: str
    protocols: list[str]
    runs: list[str]
    reason: str  # the first sentence of the first reason


@dataclass
class Document:
    tables: dict[str, Table]  # protocol -> its table
    papers: dict[str, list[Comparison]]  # protocol -> paper-reported vs reproduced
    missing: list[Missing]
    fix: str | None  # the one command that computes every missing metric, when we know it
    sensitivity: list[tuple[str, str, dict[str, float | None]]] = field(default_factory=list)
    # (run, metric, protocol -> value): metrics computed under two protocols or more


def _first_sentence(text: str) -> str:
    """The reason's first sentence without its parentheses (the footnotes keep the whole text)."""
    head = re.sub(r" \([^()]*\)", "", re.split(r"(?<=[.;])\s", text, maxsplit=1)[0])
    return head if len(head) <= 240 else head[:239].rsplit(" ", 1)[0] + " …"


def build_document(runs: list[RunMetrics], sort_by: str | None = None) -> Document:
    groups = by_protocol(runs)
    if sort_by is not None and not any(_has(group, sort_by) for group in groups.values()):
        names = sorted({m for r in runs for m in (*r.metrics, *r.unavailable)})
        raise ConfigError(
            f"--sort-by {sort_by!r} is not a metric of these files; choose one of {', '.join(names)}"
        )
    tables = {
        p: build_table(group, sort_by=sort_by if sort_by and _has(group, sort_by) else None)
        for p, group in groups.items()
    }
    papers = {p: comparisons(t.runs, t.metrics) for p, t in tables.items()}
    found: dict[str, Missing] = {}
    keys: list[str] = []
    for run in (r for group in groups.values() for r in group):  # in the report's protocol order
        for metric, reason in run.unavailable.items():
            entry = found.setdefault(metric, Missing(metric, [], [], _first_sentence(reason)))
            if run.protocol not in entry.protocols:
                entry.protocols.append(run.protocol)
            if run.label not in entry.runs:
                entry.runs.append(run.label)
            for match in _FETCH.finditer(reason):
                for key in match.group(1).split():
                    if key not in keys:
                        keys.append(key)
    fix = f"pgpis fetch-weights {' '.join(keys)} && dvc repro" if keys else None
    return Document(tables, papers, list(found.values()), fix, sensitivity(groups))


def _has(runs: list[RunMetrics], metric: str) -> bool:
    return any(metric in r.metrics or metric in r.unavailable for r in runs)


def sensitivity(groups: dict[str, list[RunMetrics]]) -> list[tuple[str, str, dict[str, float | None]]]:
    """Rows (run, metric, {protocol: value or None}) for every metric named in two protocols or more."""
    if len(groups) < 2:
        return []
    protocols = list(groups)
    named: dict[str, set[str]] = {}
    for p, group in groups.items():
        for r in group:
            for m in (*r.metrics, *r.unavailable):
                named.setdefault(m, set()).add(p)
    shared = [m for m in named if len(named[m]) >= 2]
    labels = list(dict.fromkeys(r.label for g in groups.values() for r in g))
    order = build_table(groups[protocols[0]]).metrics
    shared.sort(key=lambda m: (order.index(m) if m in order else len(order), m))
    rows = []
    for label in labels:
        for m in shared:
            values: dict[str, float | None] = {}
            for p in protocols:
                run = next((r for r in groups[p] if r.label == label), None)
                values[p] = run.metrics.get(m) if run is not None and p in named[m] else None
            if sum(v is not None for v in values.values()) >= 2:
                rows.append((label, m, values))
    return rows


def scores(doc: Document) -> dict[str, dict[str, dict[str, float]]]:
    """protocol -> run -> metric -> value: the numbers alone, for `dvc metrics show`."""
    return {p: {r.label: dict(sorted(r.metrics.items())) for r in t.runs} for p, t in doc.tables.items()}


def plot_data(doc: Document) -> dict[str, dict[str, str]]:
    """protocol -> metric -> CSV text (run, value, ci95_low, ci95_high; table order): `dvc plots`."""
    out: dict[str, dict[str, str]] = {}
    for p, table in doc.tables.items():
        for m in table.metrics:
            rows = [r for r in table.runs if m in r.metrics]
            if not rows:
                continue
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(["run", "value", "ci95_low", "ci95_high"])
            for r in rows:
                lo, hi = r.ci95.get(m, (r.metrics[m], r.metrics[m]))
                writer.writerow([r.label, repr(r.metrics[m]), repr(lo), repr(hi)])
            out.setdefault(p, {})[m] = buf.getvalue()
    return out


def value_text(metric: str, value: float | None) -> str:
    return NOT_COMPUTED if value is None else format_value(metric, value)


def scores_json(values: dict[str, float]) -> str:
    return json.dumps(values, indent=2, sort_keys=True) + "\n"
