"""`pgpis report` in MLflow: one experiment per dataset and protocol, a parent run per report with one
child per method run, updated (never duplicated) when the report runs again on the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli.main import main

RUNS = {"copy-source": 0.41, "cfld-tiny": 0.66}
PROTOCOLS = ("pgpis-v1", "cfld-256")


def _manifest(folder: Path, method: str) -> None:
    folder.mkdir(parents=True)
    sampling = (
        {"scheduler": "ddim", "num_inference_steps": 20, "scales": {"uc": 1.0}} if method == "cfld" else None
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "settings": {
                    "method": {"method": method, "checkpoint": "ck/model", "sampling": sampling},
                    "checkpoint_sha256": "ab" * 32 if method == "cfld" else None,
                    "seed": 3407,
                    "dataset": {"annotations_sha256": "cd" * 32, "dataset_json_sha256": None},
                },
                "method": {"name": method},
                "dataset": "/somewhere/datasets/synthetic",
                "num_pairs": 24,
                "pairs_sha256": "ef" * 32,
            }
        )
    )


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    metrics, per_image, figures = tmp_path / "metrics", tmp_path / "per_image", tmp_path / "figures"
    figures.mkdir()
    for run, ssim in RUNS.items():
        method = "cfld" if run.startswith("cfld") else run
        _manifest(tmp_path / "generated" / run, method)
        (figures / f"gallery_{run}.png").write_bytes(b"\x89PNG " + run.encode())
        for protocol in PROTOCOLS:
            path = metrics / protocol / f"{run}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            fid = f"fid_{'ptincv3' if protocol == 'pgpis-v1' else 'incv3tv'}_train"
            path.write_text(
                json.dumps(
                    {
                        "protocol": protocol,
                        "protocol_settings": {"name": protocol, "eval_size": [256, 176]},
                        "method": {"name": method},
                        "images": str(tmp_path / "generated" / run),
                        "num_images": 24,
                        "num_expected": 24,
                        "dropped": 0,
                        "metrics": {"ssim_w51": ssim, "psnr": 10 + ssim},
                        "ci95": {"ssim_w51": [ssim - 0.01, ssim + 0.01]},
                        "unavailable": {
                            fid: "weight pt_inception.pth is not at /x. Run `pgpis fetch-weights pt_inception` when online"
                        },
                        "git": "0123456789abcdef",
                        "timing_seconds": {"total": 1.0},
                    }
                )
            )
            csv_path = per_image / protocol / f"{run}.csv"
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            csv_path.write_text("pair_id,ssim_w51\na,0.5\n")
    for protocol in PROTOCOLS:
        (figures / f"metrics_{protocol}.png").write_bytes(b"\x89PNG chart")
    study = tmp_path / "study.json"
    study.write_text(
        json.dumps(
            {"runs": {run: {"user_jab": {"value": 0.25}, "user_g2r": {"value": None}} for run in RUNS}}
        )
    )
    return {"root": tmp_path, "metrics": metrics, "per_image": per_image, "figures": figures, "study": study}


def test_provenance_recorded_by_evaluate_is_logged_as_readable_params(
    project: dict[str, Path], capsys
) -> None:
    """Metrics files that carry `provenance` (pgpis evaluate copies it from the manifest) are read as
    they are; a method's nested settings become one JSON param, not one param per model field."""
    from mlflow.tracking import MlflowClient

    for path in project["metrics"].rglob("*.json"):
        data = json.loads(path.read_text())
        data.update(schema_version=1, device="cpu", dtype="float32", versions={})
        data["provenance"] = {
            "method": data["method"]["name"],
            "config": {
                "sampling": {"scheduler": "ddpm", "num_inference_steps": 50},
                "model": {"unet": {"ch": 64}},
            },
            "checkpoint_sha256": "12" * 32,
            "seed": 1,
            "sampler": "ddpm",
            "steps": 50,
            "guidance": {"uc": 2.0, "down": 2.0},
            "dataset_files_sha256": {"annotations_sha256": "34" * 32, "pairs_sha256": "56" * 32},
            "num_pairs": 24,
        }
        path.write_text(json.dumps(data))
    uri = f"sqlite:///{project['root'] / 'mlflow.db'}"
    _report(project, uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("pgpis-bench/synthetic/pgpis-v1")  # name from the images manifest
    child = next(r for r in client.search_runs([exp.experiment_id]) if r.info.run_name == "cfld-tiny")
    p = child.data.params
    assert (
        p["provenance.source"] == "metrics"
        and p["provenance.sampler"] == "ddpm"
        and p["provenance.steps"] == "50"
    )
    assert json.loads(p["provenance.config"])["model"] == {"unet": {"ch": 64}}
    assert (
        p["provenance.guidance.down"] == "2.0"
        and p["provenance.dataset_files_sha256.pairs_sha256"] == "56" * 32
    )
    assert p["provenance.device"] == "cpu" and p["provenance.schema_version"] == "1"
    assert not [k for k in p if k.startswith("provenance.config.")]


def _report(project: dict[str, Path], uri: str, *extra: str) -> None:
    root = project["root"]
    argv = ["report", "--metrics", str(project["metrics"]), "--out", str(root / "metrics.md"), "--html",
            str(root / "index.html"), "--figures", str(project["figures"]), "--attach", str(project["figures"]),
            "--per-image", str(project["per_image"]), "--mlflow", uri, *extra]  # fmt: skip
    assert main(argv) == 0


def test_two_reports_on_the_same_inputs_update_never_duplicate(project: dict[str, Path], capsys) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project['root'] / 'mlflow.db'}"
    _report(project, uri)
    assert "6 run(s) created, 0 updated" in capsys.readouterr().out
    _report(project, uri, "--user-study-scores", str(project["study"]))
    assert "0 run(s) created, 6 updated" in capsys.readouterr().out

    client = MlflowClient(uri)
    experiments = sorted(e.name for e in client.search_experiments() if e.name != "Default")
    assert experiments == ["pgpis-bench/synthetic/cfld-256", "pgpis-bench/synthetic/pgpis-v1"]
    counts = {}
    for name in experiments:
        exp = client.get_experiment_by_name(name)
        runs = client.search_runs([exp.experiment_id])
        parents = [r for r in runs if r.data.tags.get("pgpis.kind") == "report"]
        children = [r for r in runs if r.data.tags.get("pgpis.kind") == "method-run"]
        assert len(parents) == 1 and len(children) == len(RUNS) and len(runs) == 1 + len(RUNS)
        assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
        assert sorted(a.path for a in client.list_artifacts(parents[0].info.run_id, "report")) == [
            "report/index.html", "report/metrics.md"]  # fmt: skip
        cfld = next(c for c in children if c.info.run_name == "cfld-tiny")
        p = cfld.data.params
        assert p["provenance.method"] == "cfld" and p["provenance.checkpoint_sha256"] == "ab" * 32
        assert (
            p["provenance.seed"] == "3407"
            and p["provenance.sampler"] == "ddim"
            and p["provenance.steps"] == "20"
        )
        assert p["provenance.guidance.uc"] == "1.0" and p["provenance.num_pairs"] == "24"
        assert (
            p["provenance.dataset.annotations_sha256"] == "cd" * 32
            and p["provenance.git_commit"] == "0123456789abcdef"
        )
        assert p["num_images"] == "24" and p["protocol"] == name.rsplit("/", 1)[1]
        fid = next(k for k in cfld.data.tags if k.startswith("unavailable.fid_"))
        assert "fetch-weights" in cfld.data.tags[fid] and p["unavailable"] == fid.split(".", 1)[1]
        # Metrics logged once (no duplicate history), user-study scores beside them in the same run.
        assert cfld.data.metrics["ssim_w51"] == pytest.approx(0.66) and cfld.data.metrics["user_jab"] == 0.25
        assert len(client.get_metric_history(cfld.info.run_id, "ssim_w51")) == 1
        assert "user_g2r" not in cfld.data.metrics  # no answers: no number
        listed = sorted(a.path for a in client.list_artifacts(cfld.info.run_id, "figures"))
        assert listed == ["figures/gallery_cfld-tiny.png", f"figures/metrics_{name.rsplit('/', 1)[1]}.png"]
        assert sorted(a.path for a in client.list_artifacts(cfld.info.run_id, "metrics")) == [
            "metrics/cfld-tiny.csv", "metrics/cfld-tiny.json"]  # fmt: skip
        inputs = cfld.inputs.dataset_inputs
        assert len(inputs) == 1 and inputs[0].dataset.name == "synthetic"
        counts[name] = (
            len(runs),
            len(p),
            sum(
                len(client.list_artifacts(r.info.run_id, d))
                for r in runs
                for d in ("report", "figures", "metrics")
            ),
        )
    print("MLflow after two reports (runs, params of a child, artifacts):", counts)


def test_changed_inputs_make_a_new_report_run(project: dict[str, Path], capsys) -> None:
    uri = f"sqlite:///{project['root'] / 'mlflow.db'}"
    _report(project, uri)
    path = project["metrics"] / "pgpis-v1" / "cfld-tiny.json"
    data = json.loads(path.read_text())
    data["metrics"]["ssim_w51"] = 0.7
    path.write_text(json.dumps(data))
    capsys.readouterr()
    _report(project, uri)
    # pgpis-v1's inputs changed: a new parent with its two children; cfld-256's report is found again.
    assert "3 run(s) created, 3 updated" in capsys.readouterr().out
