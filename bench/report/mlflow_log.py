"""The report in MLflow, laid out as researchers browse it.

- One experiment per dataset and protocol: ``<--experiment>/<dataset>/<protocol>`` (numbers of two
  protocols or two datasets are never compared, so they never share a run list).
- Per report (a pipeline run) one parent run, and under it one child run per method run.
- Re-running the report on the same inputs updates those runs, never adds new ones: each run
  carries a deterministic key (tag ``pgpis.key``: a hash of what it shows) and is looked up by it.
- A child's params are the generation provenance (method, config, checkpoint sha256, seed, sampler,
  steps, guidance, dataset hashes, number of images, git commit) and the protocol settings; its
  metrics the numbers and CI bounds; a metric that could not be computed is a tag
  ``unavailable.<metric>`` holding the reason, and the param ``unavailable`` lists them.
- Artifacts: the metrics file, the per-image CSV, the figures (the run's gallery among them);
  the parent holds the report pages. The dataset is logged with ``log_input``; user-study
  scores, when given, land in the same child runs as metrics.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.report.document import Document
from bench.report.provenance import provenance
from bench.report.results import RunMetrics

KEY_TAG = "pgpis.key"
# Fields of a metrics file that change between two evaluations of the same images (not results).
VOLATILE = ("timing_seconds",)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_key(run: RunMetrics) -> str:
    """Same metrics file content (timings aside) -> same key -> the same MLflow run."""
    content = {k: v for k, v in run.raw.items() if k not in VOLATILE}
    return _digest({"label": run.label, "protocol": run.protocol, "metrics_file": content})


def dataset_name(run: RunMetrics, prov: dict[str, Any]) -> str:
    root = prov.get("dataset_root") or prov.get("dataset_path")
    if not root:
        manifest = Path(run.images or "") / "manifest.json"
        try:
            root = json.loads(manifest.read_text(encoding="utf-8")).get("dataset")
        except (OSError, ValueError):
            root = None
    return Path(str(root)).name if root else "unknown-dataset"


def _params(run: RunMetrics, prov: dict[str, Any]) -> dict[str, str]:
    from bench.tracking import flatten_params

    params: dict[str, Any] = {
        "run": run.label,
        "protocol": run.protocol,
        "num_images": run.num_images,
        "num_expected": run.num_expected,
        "dropped": run.dropped,
        "provenance": {k: _one_level(v) for k, v in prov.items()},
        "protocol_settings": {k: v for k, v in run.protocol_settings.items() if k != "notes"},
        "unavailable": ", ".join(sorted(run.unavailable)) or "none",
    }
    return {k: v for k, v in flatten_params(params).items() if v not in ("None", "")}


def _one_level(value: Any) -> Any:
    """A mapping of plain values stays a mapping (one param each); anything nested deeper (a method's
    whole settings) is one JSON param, so a model config does not become hundreds of params."""
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _find(client: Any, experiment_id: str, key: str) -> Any | None:
    found = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=2)
    return found[0] if found else None


def _user_study(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): v for k, v in data["runs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DataError(
            f"{path}: not a `pgpis user-study score` result ({err}); score the sheets with `pgpis user-study score`"
        ) from None


def _log_dataset(client: Any, run_id: str, name: str, prov: dict[str, Any]) -> None:
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    hashes = prov.get("dataset") if isinstance(prov.get("dataset"), dict) else {}
    digest = _digest(hashes)[:8] if hashes else None
    source = HTTPDatasetSource(url=f"file://{name}")  # where it came from; the digest says which version
    dataset = MetaDataset(source=source, name=name, digest=digest)
    client.log_inputs(
        run_id,
        datasets=[DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", "test")])],
    )


def log_report(args: argparse.Namespace, doc: Document, runs: list[RunMetrics]) -> dict[str, int] | None:
    """Log the report (see the module docstring); returns counts of runs created and updated."""
    from bench.tracking import tracking_uri

    uri = tracking_uri(args.mlflow)
    if not uri:
        return None
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    study = _user_study(getattr(args, "user_study_scores", None))
    counts = {"created": 0, "updated": 0}
    pages = [p for p in (args.out, getattr(args, "html", None), getattr(args, "csv", None)) if p]

    def open_run(experiment_id: str, key: str, name: str, tags: dict[str, str]) -> tuple[str, bool]:
        existing = _find(client, experiment_id, key)
        if existing is not None:
            counts["updated"] += 1
            return existing.info.run_id, False
        created = client.create_run(experiment_id, run_name=name, tags={KEY_TAG: key, **tags})
        counts["created"] += 1
        return created.info.run_id, True

    for protocol, table in doc.tables.items():
        provs = {r.label: provenance(r) for r in table.runs}
        datasets = sorted({dataset_name(r, provs[r.label]) for r in table.runs})
        experiment = f"{args.experiment}/{'+'.join(datasets)}/{protocol}"
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        # The parent is this report's set of inputs; a child is one run within it (a run shown by two
        # reports is a child of each: MLflow gives a run one parent).
        parent_key = _digest({"experiment": experiment, "runs": sorted(run_key(r) for r in table.runs)})
        child_keys = {r.label: _digest({"parent": parent_key, "run": run_key(r)}) for r in table.runs}
        parent_id, _ = open_run(
            experiment_id, parent_key, f"report {protocol}", {"pgpis.kind": "report", "protocol": protocol}
        )
        for path in pages:
            client.log_artifact(parent_id, str(path), artifact_path="report")
        for run in table.runs:
            prov = provs[run.label]
            tags = {
                "mlflow.parentRunId": parent_id,
                "pgpis.kind": "method-run",
                "protocol": protocol,
                "method": run.method or "?",
                "provenance.source": prov.get("source", "none"),
                **{f"unavailable.{k}": v[:5000] for k, v in run.unavailable.items()},
            }
            run_id, new = open_run(experiment_id, child_keys[run.label], run.label, tags)
            if new:
                params = [Param(k, v) for k, v in _params(run, prov).items()]
                values = {**run.metrics}
                values.update({f"{k}.ci95_lo": v[0] for k, v in run.ci95.items()})
                values.update({f"{k}.ci95_hi": v[1] for k, v in run.ci95.items()})
                metrics = [Metric(k.replace("@", "_"), float(v), 0, 0) for k, v in values.items()]
                client.log_batch(run_id, metrics=metrics, params=params[:100])
                for chunk in range(100, len(params), 100):
                    client.log_batch(run_id, params=params[chunk : chunk + 100])
                _log_dataset(client, run_id, dataset_name(run, prov), prov)
            else:
                client.log_batch(
                    run_id, tags=[RunTag(k, v) for k, v in tags.items() if k != "mlflow.parentRunId"]
                )
            if run.label in study:
                # Scores may arrive after the run was first logged: logged when new or changed.
                have = client.get_run(run_id).data.metrics
                fresh = {
                    name: float(v["value"])
                    for name, v in study[run.label].items()
                    if isinstance(v, dict)
                    and v.get("value") is not None
                    and have.get(name) != float(v["value"])
                }
                if fresh:
                    client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in fresh.items()])
            client.log_artifact(run_id, str(run.path), artifact_path="metrics")
            per_image = _per_image(args, run)
            if per_image is not None:
                client.log_artifact(run_id, str(per_image), artifact_path="metrics")
            for path in args.attach:
                for figure in _run_figures(path, run, protocol):
                    client.log_artifact(run_id, str(figure), artifact_path="figures")
            client.set_terminated(run_id)
        client.set_terminated(parent_id)
    print(
        f"MLflow at {uri}: {counts['created']} run(s) created, {counts['updated']} updated "
        f"(experiments {args.experiment}/<dataset>/<protocol>)"
    )
    return counts


def _per_image(args: argparse.Namespace, run: RunMetrics) -> Path | None:
    folder = getattr(args, "per_image", None)
    if folder is None:
        return None
    for candidate in (folder / run.protocol / f"{run.label}.csv", folder / f"{run.label}.csv"):
        if candidate.is_file():
            return candidate
    return None


def _run_figures(path: Path, run: RunMetrics, protocol: str) -> list[Path]:
    """The figures of one run: its gallery, the protocol's chart, the comparison grid; a file given
    explicitly is attached as it is."""
    if path.is_file():
        return [path]
    wanted = {f"gallery_{run.label}.png", f"metrics_{protocol}.png", "metrics.png", "comparison.png"}
    return sorted(p for p in path.glob("*.png") if p.name in wanted)
