"""Results that stand alone: schema version and JSON Schema (every file the engine writes validates),
provenance from the images folder's manifest, device and dtype; report refuses unequal settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _metrics_data import write_generated, write_root
from jsonschema import Draft202012Validator

from bench.cli.main import main
from bench.errors import ConfigError, DataError
from bench.metrics.outputs import RUN_FACTS
from bench.metrics.results_schema import SCHEMA_PATH, SCHEMA_VERSION
from bench.report.results import load_run, load_runs
from bench.report.tables import build_table

MANIFEST = {
    "settings": {
        "method": {
            "method": "cfld",
            "checkpoint": "ckpt/model",
            "sampling": {
                "scheduler": "ddim",
                "num_inference_steps": 50,
                "guidance_type": "cfg",
                "scales": [2.0, 2.0],
            },
        },
        "checkpoint_sha256": "ab" * 32,
        "seed": 3407,
        "output_size": [256, 176],
        "split": "test",
        "dataset": {"annotations_sha256": "cd" * 32, "dataset_json_sha256": None},
    },
    "method": {"name": "cfld", "description": "d", "paper": "p"},
    "dataset": "/data",
    "split": "test",
    "pairs_sha256": "ef" * 32,
    "num_pairs": 4,
    "versions": {"torch": "2.14.1"},
}


def _evaluate_cli(root: Path, images: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "evaluate",
            "--protocol",
            "cfld-256",
            "--images",
            str(images),
            "--dataset",
            str(root),
            "--out",
            str(out),
            "--per-image",
            str(out.with_suffix(".csv")),
            "--allow-unverified-weights",
            "--no-progress",
            "--bootstrap",
            "20",
            "--device",
            "cpu",
            "--cache-dir",
            str(root.parent / "cache"),
            *extra,
        ]
    )


def test_every_file_the_engine_writes_validates_and_carries_provenance(
    tmp_path: Path, pool_fid: None
) -> None:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    (tmp_path / "gen" / "manifest.json").write_text(json.dumps(MANIFEST))
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    Draft202012Validator.check_schema(validator.schema)

    out = tmp_path / "m.json"
    assert _evaluate_cli(root, tmp_path / "gen", out) == 0
    rec = json.loads(out.read_text())
    validator.validate(rec)
    assert rec["schema_version"] == SCHEMA_VERSION and rec["device"] == "cpu" and rec["dtype"] == "float32"
    prov = rec["provenance"]
    assert prov["method"] == "cfld" and prov["checkpoint_sha256"] == "ab" * 32 and prov["seed"] == 3407
    assert (prov["sampler"], prov["steps"], prov["guidance"]) == ("ddim", 50, [2.0, 2.0])
    assert prov["num_pairs"] == 4 and prov["dataset_files_sha256"]["pairs_sha256"] == "ef" * 32
    assert prov["config"]["checkpoint"] == "ckpt/model" and len(prov["manifest_sha256"]) == 64
    # no facts of the run (time taken, commit): the same inputs write the same bytes (dvc.lock reproduces)
    assert not set(RUN_FACTS) & set(rec)
    # (the first run computed the reference statistics and the record says so; the next ones read
    # them from the cache, as the pipeline's runs read them from reports/refstats)
    again, third = tmp_path / "again.json", tmp_path / "third.json"
    assert _evaluate_cli(root, tmp_path / "gen", again) == 0
    facts = tmp_path / "facts.json"
    assert _evaluate_cli(root, tmp_path / "gen", third, "--run-facts", str(facts)) == 0
    assert again.read_bytes() == third.read_bytes()
    # ... and what they leave out is there for benchmarks when asked for
    run_facts = json.loads(facts.read_text())
    assert set(run_facts) == set(RUN_FACTS) and run_facts["timing_seconds"]["total"] > 0

    # without a manifest: provenance null; the set-level command's file validates too
    (tmp_path / "gen" / "manifest.json").unlink()
    assert _evaluate_cli(root, tmp_path / "gen", out) == 0
    assert json.loads(out.read_text())["provenance"] is None
    fid_out = tmp_path / "fid.json"
    assert (
        main(
            [
                "fid",
                "--images",
                str(tmp_path / "gen"),
                "--reference",
                str(root / "train_highres"),
                "--protocol",
                "cfld-256",
                "--out",
                str(fid_out),
                "--allow-unverified-weights",
                "--no-progress",
                "--device",
                "cpu",
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    fid_rec = json.loads(fid_out.read_text())
    validator.validate(fid_rec)
    assert fid_rec["kind"] == "set" and "fid_incv3tv_folder" in fid_rec["metrics"]


def _metrics(folder: Path, name: str, settings: dict, **extra) -> Path:  # noqa: ANN003
    path = folder / f"{name}.json"
    data = {
        "schema_version": SCHEMA_VERSION,
        "protocol": "pidm",
        "protocol_settings": settings,
        "metrics": {"ssim_w51": 0.7},
        "num_images": 10,
        "unavailable": {},
        "provenance": None,
        "device": "cpu",
        "dtype": "float32",
        "versions": {},
    }
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


def test_report_refuses_one_protocol_name_with_different_settings(tmp_path: Path) -> None:
    a = _metrics(tmp_path, "a", {"drop_remainder": None, "eval_size": [256, 256]})
    b = _metrics(tmp_path, "b", {"drop_remainder": 64, "eval_size": [256, 256]})
    with pytest.raises(ConfigError, match="drop_remainder") as err:
        build_table(load_runs([a, b]))
    assert str(a) in str(err.value) and str(b) in str(err.value)
    c = _metrics(tmp_path, "c", {"drop_remainder": None, "eval_size": [256, 256]})
    assert len(build_table(load_runs([a, c])).runs) == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"num_images": NaN', "num_images"),
        ('"num_images": Infinity', "num_images"),
        ('"dropped": -Infinity', "dropped"),
        ('"num_images": "ten"', "num_images"),
        ('"unavailable": ["x"]', "unavailable"),
        ('"ci95": {"ssim_w51": [0.1, NaN]}', "ci95.ssim_w51"),
        ('"protocol_settings": [1, 2]', "protocol_settings"),
        ('"schema_version": 99', "schema_version"),
    ],
)
def test_bad_metrics_json_is_refused_naming_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _metrics(tmp_path, "bad", {})
    body = path.read_text()
    key = text.split(":")[0]
    data = json.loads(body)
    data.pop(key.strip('"'), None)
    path.write_text(json.dumps(data)[:-1] + ", " + text + "}")
    with pytest.raises(DataError) as err:
        load_run(path)
    assert str(path) in str(err.value) and field in str(err.value)
    # through the CLI: exit 2 and the message, no traceback
    assert main(["report", "--metrics", str(path), "--out", str(tmp_path / "t.md")]) == 2
