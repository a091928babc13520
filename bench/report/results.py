"""Read ``metrics.json`` files (written by ``pgpis evaluate``, format in docs/architecture.md).

A results file is data from outside: it is validated against the results schema
(``bench/metrics/metrics.schema.json``; files without ``schema_version``, written before it, field
by field with only ``protocol`` and ``metrics`` required) before any value is used, so a wrong
type or a NaN/Infinity count is refused with the file and the field named, never a traceback. A
metric value that is NaN is shown as not available (with the reason), never averaged or ranked.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DataError

_FIX = "regenerate it with `pgpis evaluate` (format in docs/architecture.md, 'Metrics files')"


@dataclass
class RunMetrics:
    """One evaluated run: the numbers of one metrics file."""

    path: Path
    label: str
    method: str | None
    protocol: str
    protocol_settings: dict[str, Any]
    num_images: int | None
    num_expected: int | None
    dropped: int
    allow_missing: bool
    metrics: dict[str, float]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)  # a set-level metric's std over subsets (KID)
    images: str | None = None  # the scored images folder (its manifest.json holds the provenance)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # the whole file, for provenance


def _method_name(value: Any) -> str | None:
    # evaluate copies the method from the generation manifest: a name or the manifest's method object.
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value not in (None, "") else None


def default_label(path: Path) -> str:
    """``reports/<run>/metrics.json`` -> ``<run>``; ``reports/<run>.json`` -> ``<run>``."""
    return path.parent.name if path.name == "metrics.json" and path.parent.name else path.stem


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value is None:
        raise DataError(f"{path}: {where} must be a number, found {value!r}; {_FIX}")
    return float(value)


def load_run(path: str | os.PathLike, label: str | None = None) -> RunMetrics:
    """Parse one metrics file; a DataError names the file and the bad field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: metrics file not found; run `pgpis evaluate ... --out {path}` first"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable metrics JSON file ({err}); {_FIX}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a metrics file must hold a JSON object; {_FIX}")
    protocol = data.get("protocol")
    if not isinstance(protocol, str) or not protocol:
        raise DataError(f"{path}: no 'protocol' name; numbers without a protocol cannot be compared; {_FIX}")
    raw_metrics = data.get("metrics")
    if not isinstance(raw_metrics, dict):
        raise DataError(f"{path}: no 'metrics' object; {_FIX}")
    metrics = {}
    for name, value in raw_metrics.items():
        if value is None:  # tolerated: treated as unavailable below
            continue
        metrics[str(name)] = _number(value, path, f"metrics.{name}")
    # Everything else against the schema (types, counts that are integers, finite interval bounds).
    from bench.metrics.results_schema import problems

    found = problems(data)
    if found:
        shown = "; ".join(found[:5]) + (f"; ... ({len(found) - 5} more)" if len(found) > 5 else "")
        raise DataError(f"{path}: not a valid metrics file: {shown}; {_FIX}")
    unavailable = {str(k): str(v) for k, v in (data.get("unavailable") or {}).items()}
    for name, value in raw_metrics.items():
        if value is None and name not in unavailable:
            unavailable[str(name)] = "no value recorded"
    for name in [k for k, v in metrics.items() if not math.isfinite(v)]:
        # A NaN is never averaged or ranked as if it were a number.
        unavailable.setdefault(name, f"not a finite number ({metrics.pop(name)})")
    ci95 = {}
    for name, bounds in (data.get("ci95") or {}).items():
        if not (isinstance(bounds, list | tuple) and len(bounds) == 2):
            raise DataError(f"{path}: ci95.{name} must be a [low, high] pair, found {bounds!r}; {_FIX}")
        ci95[str(name)] = (_number(bounds[0], path, f"ci95.{name}"), _number(bounds[1], path, f"ci95.{name}"))
    directions = {str(k): str(v) for k, v in (data.get("directions") or {}).items()}
    std = {
        str(k): float(v["std"])
        for k, v in (data.get("metric_details") or {}).items()
        if isinstance(v, dict) and isinstance(v.get("std"), int | float) and math.isfinite(v["std"])
    }

    def count(key: str) -> int | None:
        value = data.get(key)
        return None if value is None else int(_number(value, path, key))

    return RunMetrics(
        path=path,
        label=label or default_label(path),
        method=_method_name(data.get("method")),
        protocol=protocol,
        protocol_settings=dict(data.get("protocol_settings") or {}),
        num_images=count("num_images"),
        num_expected=count("num_expected"),
        dropped=count("dropped") or 0,
        allow_missing=bool(data.get("allow_missing", False)),
        metrics=metrics,
        ci95=ci95,
        unavailable=unavailable,
        directions=directions,
        std=std,
        images=str(data["images"]) if data.get("images") else None,
        raw=data,
    )


def expand_metrics_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files stay as given; a folder stands for its ``*.json`` files, its subfolders' included, in
    path order (the pipeline passes ``reports/metrics``: one subfolder per protocol, one file per run)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.json"))
            if not found:
                raise DataError(f"{p}: folder holds no metrics .json files; run `pgpis evaluate` first")
            out.extend(found)
        else:
            out.append(p)
    return out


def load_runs(paths: list[str | os.PathLike], labels: list[str] | None = None) -> list[RunMetrics]:
    paths = expand_metrics_paths(paths)
    if labels is not None and len(labels) != len(paths):
        raise DataError(
            f"--labels gives {len(labels)} labels for {len(paths)} metrics files; give one per file"
        )
    runs = [load_run(p, labels[i] if labels else None) for i, p in enumerate(paths)]
    seen: dict[tuple[str, str], Path] = {}
    for run in runs:
        # A run appears once per protocol: the label is unique within a protocol.
        if (run.label, run.protocol) in seen:
            raise DataError(
                f"{run.path} and {seen[run.label, run.protocol]} would both be labelled {run.label!r} under "
                f"protocol {run.protocol}; name each run with --labels (one per metrics file)"
            )
        seen[run.label, run.protocol] = run.path
    return runs


def by_protocol(runs: list[RunMetrics]) -> dict[str, list[RunMetrics]]:
    """Runs grouped by protocol: the recommended pgpis-* protocols first, then by name."""
    groups: dict[str, list[RunMetrics]] = {}
    for run in runs:
        groups.setdefault(run.protocol, []).append(run)
    order = sorted(groups, key=lambda name: (not name.startswith("pgpis"), name))
    return {name: groups[name] for name in order}
