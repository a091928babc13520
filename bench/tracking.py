"""Optional MLflow tracking. Never mandatory and never changes a result.

Tracking is on when a tracking URI is given (``--mlflow URI`` on the commands that support it, or
``MLFLOW_TRACKING_URI``); otherwise every function here is a no-op. MLflow is imported lazily so
commands that do not track pay nothing for it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any


def tracking_uri(explicit: str | None = None) -> str | None:
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or None


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj


def flatten_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Nested settings -> MLflow params (dotted keys; values as strings, cut to MLflow's limit)."""
    flat: dict[str, Any] = {}
    _flatten("", params, flat)
    return {k: str(v)[:6000] for k, v in flat.items()}


@contextlib.contextmanager
def mlflow_run(
    uri: str | None, experiment: str, run_name: str, params: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """Yield an active MLflow run (or ``None`` when tracking is off)."""
    if not uri:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        if params:
            mlflow.log_params(flatten_params(params))
        yield run


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log finite numeric metrics to the active run, if any."""
    import math

    import mlflow

    if mlflow.active_run() is None:
        return
    clean = {
        k.replace("@", "_"): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and math.isfinite(float(v))
    }
    if clean:
        mlflow.log_metrics(clean, step=step)
