"""The metric registry is the one declaration every reader uses: protocols, report, README, CLI help."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.metrics import metrics_table, registry
from bench.metrics.protocols import PROTOCOLS, MetricUse
from bench.report.tables import direction, format_value

README = Path(__file__).resolve().parents[2] / "bench" / "metrics" / "README.md"

# The results keys of the protocols made before the registry: they must never change.
HISTORICAL = {
    "cfld-256": ["fid_incv3tv_train", "lpips_alex_v0.1", "ssim_w51", "ssim_g15_dr", "psnr"],
    "cfld-512": ["fid_incv3tv_train", "lpips_alex_v0.1", "ssim_w51", "ssim_g15_dr", "psnr"],
    "pidm": ["fid_incv3tv_train", "lpips_alex_v0.1", "ssim_w51", "ssim_g12_dr", "psnr", "l1", "mae_sumnorm"],
    "gfla-dptn": ["fid_incv3tv_train", "lpips_alex_v0.1", "ssim_w51_pad40", "ssim_g15_dr_pad40", "psnr_pad40"],
    "pgpis-v1": ["fid_ptincv3_train", "lpips_alex_v0.1", "ssim_w51", "ssim_g15_dr", "ssim_g12_dr",
                 "ssim_w51_pad40", "ssim_g15_dr_pad40", "psnr", "psnr_pad40"],
}  # fmt: skip


def test_readme_metrics_table_is_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    block = text.split(metrics_table.START, 1)[1].split(metrics_table.END, 1)[0]
    assert metrics_table.START + block + metrics_table.END == metrics_table.markdown(load_plugins=False), (
        "bench/metrics/README.md's metrics table differs from the registry; regenerate it with "
        "`python -m bench.metrics.metrics_table --write bench/metrics/README.md`"
    )


@pytest.mark.parametrize("name", sorted(HISTORICAL))
def test_existing_protocols_keep_their_results_keys(name: str) -> None:
    protocol = PROTOCOLS[name]
    assert [s.result_name for s in protocol.scored_metrics()] == HISTORICAL[name]
    assert "metrics" not in protocol.settings()  # settings, hence every results file, as before


def test_geometry_is_a_declared_view_not_a_parsed_name() -> None:
    scored = {s.result_name: s for s in PROTOCOLS["gfla-dptn"].scored_metrics()}
    assert scored["ssim_w51_pad40"].metric.name == "ssim_w51" and scored["ssim_w51_pad40"].view == "pad40"
    assert "ssim_w51_pad40" not in registry.builtin()  # no metric is declared under a geometry name
    bad = PROTOCOLS["pgpis-v1"].with_options(extra_metrics=(MetricUse("lpips_vgg_v0.1", "pad40"),))
    with pytest.raises(ConfigError, match="network view"):
        bad.scored_metrics()
    with pytest.raises(ConfigError, match="unknown image view"):
        PROTOCOLS["pgpis-v1"].with_options(extra_metrics=(MetricUse("psnr", "pad41"),)).scored_metrics()
    with pytest.raises(ConfigError, match="listed twice"):
        PROTOCOLS["pgpis-v1"].with_options(extra_metrics=("psnr",)).scored_metrics()


def test_report_directions_and_decimals_come_from_the_registry() -> None:
    for protocol in PROTOCOLS.values():
        for s in protocol.scored_metrics():
            assert direction(s.result_name) == s.metric.direction
            assert format_value(s.result_name, 1 / 3) == f"{1 / 3:.{s.metric.decimals}f}"
    # names of metrics the suite does not have are not given a direction by guesswork
    for name in ("pckh", "ds", "is_score", "msssim"):
        assert direction(name) is None
    assert direction("pckh", {"pckh": "higher"}) == "higher"  # a results file's own declaration wins


def test_declarations_are_checked_and_unknown_names_get_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="kind 'pair'"):
        registry.Metric("x", "pair", registry.HIGHER, "", "m:f")
    with pytest.raises(ConfigError, match="names its extractor"):
        registry.Metric("x", registry.SET_LEVEL, registry.LOWER, "", "m:f", consumes=registry.FEATURES)
    with pytest.raises(ConfigError, match="Did you mean 'ssim_w51'"):
        registry.get_metric("ssim_w5l")
    for m in registry.builtin().values():
        assert callable(m.function()), m.name
        assert m.kind == registry.SET_LEVEL or m.extractor is None


def test_cli_help_lists_every_registered_metric(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli.main import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for name, m in registry.builtin().items():
        line = next(x for x in out.splitlines() if x.strip().startswith(name + " "))
        assert ("↑" if m.direction == registry.HIGHER else "↓") in line and m.kind in line
