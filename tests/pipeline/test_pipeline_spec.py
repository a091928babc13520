"""The pipeline fans out over runs x protocols and shares reference statistics between protocols
whose reference settings are equal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from bench.metrics.protocols import get_protocol
from bench.refkeys import distinct_references, reference_key, refstats_files

ROOT = Path(__file__).resolve().parents[2]


def params(name: str = "params.yaml") -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def test_refstats_section_is_one_entry_per_distinct_reference_setting() -> None:
    for name in ("params.yaml", "params-deepfashion.yaml"):
        p = params(name)
        expected = {
            key: {"protocol": e["protocol"], "extractor": e["extractor"]}
            for key, e in distinct_references(p["evaluate"]["protocols"]).items()
        }
        assert p["refstats"] == expected, (
            f"{name}: the refstats section is out of step with evaluate.protocols; replace it with the output of "
            f'python -c "import bench.refkeys as k; print(k.params_section({p["evaluate"]["protocols"]!r}))"'
        )


def test_protocols_with_equal_reference_settings_share_one_key() -> None:
    v1 = get_protocol("pgpis-v1")
    # LPIPS nets and SSIM variants do not change the FID reference: same key, one file.
    variant = dataclasses.replace(v1, name="pgpis-v1-vgg", lpips_nets=("alex", "vgg"), ssim=("ssim_w51",))
    assert reference_key(variant, "ptincv3") == reference_key(v1, "ptincv3")
    # Geometry does: another key.
    assert reference_key(get_protocol("cfld-512"), "incv3tv") != reference_key(
        get_protocol("cfld-256"), "incv3tv"
    )
    assert refstats_files(v1, Path("r")) == [Path("r") / f"{reference_key(v1, 'ptincv3')}.npz"]


def test_every_run_is_scored_under_every_protocol(resolved_stages: dict[str, dict]) -> None:
    p = params()
    runs, protocols = list(p["runs"]), p["evaluate"]["protocols"]
    assert protocols == ["pgpis-v1", "cfld-256", "pidm"]
    evaluate = {n: s for n, s in resolved_stages.items() if n.startswith("evaluate@")}
    assert len(evaluate) == len(runs) * len(protocols)
    for run in runs:
        for protocol in protocols:
            stage = evaluate[f"evaluate@{run}-{protocol}"]
            assert (
                f"--protocol {protocol} " in stage["cmd"]
                and f"--images reports/generated/{run} " in stage["cmd"]
            )
            assert f"reports/metrics/{protocol}/{run}.json" in stage["outs"]
            assert f"reports/per_image/{protocol}/{run}.csv" in stage["outs"]
            assert "--refstats-dir reports/refstats" in stage["cmd"] and "reports/refstats" in stage["deps"]
    refstats = {n: s for n, s in resolved_stages.items() if n.startswith("refstats@")}
    assert sorted(refstats) == sorted(f"refstats@{k}" for k in p["refstats"])
    # The numbers alone are DVC's metrics; the per-run files (numbers and metadata) are plain outputs.
    metrics = [m for s in resolved_stages.values() for m in s["metrics"]]
    assert metrics == ["reports/scores"]
