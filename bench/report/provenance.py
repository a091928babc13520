"""What made a run's images, as the report and MLflow show it: method, config, checkpoint sha256,
seed, sampler, steps, guidance, dataset hashes, number of images, git commit.

Read from the metrics file's ``provenance`` object (copied there by ``pgpis evaluate`` from the
images folder's manifest.json) or, for metrics files written before that field existed, from the
manifest.json in the folder named by the file's ``images`` field. Values a run does not record are
left out, never guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report.results import RunMetrics


def _manifest(run: RunMetrics) -> dict[str, Any] | None:
    if not run.images:
        return None
    path = Path(run.images) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # provenance is information, not a requirement: the report names what it lacks
    return data if isinstance(data, dict) else None


def _from_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    settings = manifest.get("settings") or {}
    method_settings = settings.get("method") or {}
    sampling = method_settings.get("sampling") or {}
    method = manifest.get("method") or {}
    out: dict[str, Any] = {
        "method": method.get("name") if isinstance(method, dict) else method,
        "config": method_settings.get("config"),
        "checkpoint": method_settings.get("checkpoint"),
        "checkpoint_sha256": settings.get("checkpoint_sha256"),
        "seed": settings.get("seed"),
        "sampler": sampling.get("scheduler"),
        "steps": sampling.get("num_inference_steps"),
        "guidance": sampling.get("scales"),
        "dataset": settings.get("dataset"),
        "num_pairs": manifest.get("num_pairs"),
        "pairs_sha256": manifest.get("pairs_sha256"),
    }
    return out


def provenance(run: RunMetrics) -> dict[str, Any]:
    """The run's generation provenance (keys above; absent ones left out) plus ``source``: where
    it was read (``metrics`` or the manifest's path), or ``none``."""
    recorded = run.raw.get("provenance")
    if isinstance(recorded, dict):
        found, source = dict(recorded), "metrics"
    else:
        manifest = _manifest(run)
        if manifest is None:
            found, source = {}, "none"
        else:
            found, source = _from_manifest(manifest), str(Path(run.images or "") / "manifest.json")
    git = run.raw.get("git")
    if isinstance(git, dict):
        git = git.get("commit") or git.get("sha")
    if git and "git_commit" not in found:
        found["git_commit"] = str(git)
    for key in ("device", "dtype", "schema_version"):
        if run.raw.get(key) is not None:
            found.setdefault(key, run.raw[key])
    found = {k: v for k, v in found.items() if v not in (None, "", {}, [])}
    found["source"] = source
    return found
