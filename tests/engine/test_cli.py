"""The `generate`, `methods` and `report` commands: help texts, option parsing, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli.generate import load_config
from bench.cli.main import main
from bench.errors import ConfigError


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        (
            "generate",
            [
                "manifest.json",
                "_2_",
                "byte-identical",
                "accelerate launch",
                "examples:",
                "default: 3407",
                "256x176",
            ],
        ),
        ("methods", ["pgpis_bench.methods", "entry-points", "examples:", "--json"]),
        ("report", ["metrics.json", "↑", "not computed", "--allow-mixed", "examples:", "atomically"]),
    ],
)
def test_help_explains_itself(command: str, phrases: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in phrases:
        assert phrase in text, phrase


def test_generate_cli_runs_and_refuses_other_settings(
    tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    base = [
        "generate",
        "--method",
        "copy-source",
        "--dataset",
        str(tiny_root),
        "--out",
        str(out),
        "--limit",
        "2",
        "--no-progress",
    ]
    assert main(base) == 0
    assert "2 pairs, 0 already present, 2 generated" in capsys.readouterr().out
    assert main(base) == 0
    assert "2 pairs, 2 already present, 0 generated" in capsys.readouterr().out
    assert main([*base, "--seed", "7"]) == 2
    err = capsys.readouterr().err
    assert (
        "pgpis generate: error:" in err
        and "seed: 3407 in the folder, now 7" in err
        and "Traceback" not in err
    )


def test_generate_cli_bad_size_and_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(
            ["generate", "--method", "copy-source", "--dataset", ".", "--out", str(tmp_path), "--size", "256"]
        )
    assert "expected HEIGHTxWIDTH" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "--method",
                "copy-source",
                "--dataset",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "dataset root not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_load_config(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("width_scale: 1.5\nimage_size: [128, 88]\n")
    (tmp_path / "b.json").write_text(json.dumps({"rgb": [0, 1, 0]}))
    assert load_config(str(tmp_path / "a.yaml")) == {"width_scale": 1.5, "image_size": [128, 88]}
    assert load_config(str(tmp_path / "b.json")) == {"rgb": [0, 1, 0]}
    assert load_config(None) == {}
    (tmp_path / "c.yaml").write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(str(tmp_path / "c.yaml"))
    (tmp_path / "d.yaml").write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="d.yaml: not valid YAML"):
        load_config(str(tmp_path / "d.yaml"))
    with pytest.raises(ConfigError, match="cannot read the method config"):
        load_config(str(tmp_path / "missing.yaml"))
