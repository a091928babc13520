"""Paper-reported numbers beside the reproduced ones.

The values ship as data (published.json: value, source, status) so they are declared once; every
one is flagged ``unverified`` until checked against its paper. A run is matched to an entry by its
method name (``cfld``) or, for a paper's released images, ``released:<preset>``; an entry to a
protocol by resolution (the 512x352 tables for protocols evaluating at height 512, the 256x176
tables otherwise, as the field's tables mix 256x176 and 256x256).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bench.report.provenance import provenance
from bench.report.results import RunMetrics

DATA = Path(__file__).with_name("published.json")
# Published column -> the metric of a protocol it is set beside.
COLUMNS = ("fid", "lpips", "ssim", "psnr")


@dataclass
class Comparison:
    run: str
    paper_method: str
    metric: str  # our metric name
    column: str  # the published column (fid, lpips, ssim, psnr)
    published: float
    reproduced: float | None  # None: not computed (the reason is in the main table)
    source: str
    status: str
    note: str = ""  # why the two numbers are not comparable, when we know


def synthetic(run: RunMetrics) -> bool:
    """Scored on the embedded synthetic set (its DATASET.json is recorded in the generation settings)."""
    prov = provenance(run)
    # `pgpis evaluate` records the hashes as dataset_files_sha256; older files as the manifest's dataset.
    dataset = prov.get("dataset_files_sha256") or prov.get("dataset")
    return isinstance(dataset, dict) and bool(dataset.get("dataset_json_sha256"))


@cache
def published() -> dict[str, Any]:
    return json.loads(DATA.read_text(encoding="utf-8"))


def run_key(run: RunMetrics) -> str | None:
    method = (run.method or "").lower()
    if method != "released":
        return method or None
    config = provenance(run).get("config") or ""
    if isinstance(config, dict):  # the method's settings: the released preset's file, or its name
        config = config.get("config") or config.get("name") or ""
    return f"released:{Path(str(config)).stem.lower()}" if config else None


def resolution(run: RunMetrics) -> str:
    size = run.protocol_settings.get("eval_size") or [256, 176]
    return "512x352" if int(size[0]) >= 512 else "256x176"


def metric_for(column: str, run: RunMetrics, metrics: list[str]) -> str | None:
    """Our metric set beside a published column, among the table's ``metrics``."""
    wanted = {"lpips": "lpips_alex_v0.1", "ssim": "ssim_w51", "psnr": "psnr"}.get(column)
    if column == "fid":
        return next((m for m in metrics if m.startswith("fid_")), None)
    return wanted if wanted in metrics else None


def comparisons(runs: list[RunMetrics], metrics: list[str]) -> list[Comparison]:
    """Every (run, metric) of one protocol's table with a published value."""
    out = []
    for run in runs:
        key = run_key(run)
        entry = next(
            (e for e in published()["entries"] if key in e["runs"] and e["resolution"] == resolution(run)),
            None,
        )
        if entry is None:
            continue
        note = (
            "not comparable: this run is on the synthetic set, the paper on DeepFashion"
            if synthetic(run)
            else ""
        )
        for column in COLUMNS:
            metric = metric_for(column, run, metrics)
            if metric is None or column not in entry["values"]:
                continue
            out.append(
                Comparison(
                    run.label,
                    f"{entry['method']} ({entry['resolution']})",
                    metric,
                    column,
                    float(entry["values"][column]),
                    run.metrics.get(metric),
                    entry["source"],
                    entry["status"],
                    note,
                )
            )
    return out
