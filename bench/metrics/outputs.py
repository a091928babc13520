"""metrics.json and per_image.csv of a scored run, validated and written together.

The record is checked against the results schema before anything is written (a bug in the
engine must not produce a file a reader refuses), and both files are committed as one change
(``bench.io.commit_outputs_together``): a full disk or a permission error leaves the previous
pair of files as it was, never a new metrics.json beside an old per_image.csv.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from bench.io import commit_outputs_together
from bench.metrics.results_schema import validate

# Facts about one run of the command, not about its result: how long it took and which commit ran it.
# The engine returns them (benchmarks read the timings, the CLI prints them) but the file leaves them
# out, so the same images, code and environment always write the same bytes: a fresh clone's
# `dvc repro` then reproduces dvc.lock's hashes (the commit is in git's history beside dvc.lock).
RUN_FACTS = ("timing_seconds", "git")


def file_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the results file holds it: without :data:`RUN_FACTS`."""
    return {k: v for k, v in record.items() if k not in RUN_FACTS}


def _json_writer(record: dict[str, Any]):  # noqa: ANN202
    # allow_nan=False: a non-finite number would be invalid JSON for every other reader.
    text = json.dumps(record, indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def _csv_writer(rows: list[dict[str, Any]]):  # noqa: ANN202
    def write(tmp: Path) -> None:
        cols = list(rows[0].keys()) if rows else ["pair_id"]
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for r in rows:
                w.writerow(
                    [
                        r[c] if c == "pair_id" else ("" if not math.isfinite(r[c]) else repr(r[c]))
                        for c in cols
                    ]
                )

    return write


def write_outputs(
    record: dict[str, Any], rows: list[dict[str, Any]], out_json: Path | None, out_csv: Path | None
) -> None:
    """metrics.json and per_image.csv, both or neither; non-finite per-image values are empty cells."""
    validate(record, out_json or "<results>", "this is a bug in pgpis: please report it with the command")
    writers = {}
    if out_json is not None:
        writers[out_json] = _json_writer(file_record(record))
    if out_csv is not None:
        writers[out_csv] = _csv_writer(rows)
    if writers:
        commit_outputs_together(writers)
