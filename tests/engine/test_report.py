"""`pgpis report`: Markdown/CSV tables from metrics files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.errors import ConfigError, DataError
from bench.report.results import load_run, load_runs
from bench.report.tables import build_table, direction, to_csv, to_markdown


def metrics_file(folder: Path, run: str, protocol: str = "pgpis-v1", **metrics: float | None) -> Path:
    path = folder / run / "metrics.json"
    path.parent.mkdir(parents=True)
    data = {
        "protocol": protocol,
        "protocol_settings": {"size": [256, 176]},
        "method": {"name": run.split("@")[0], "description": "d"},
        "images": f"outputs/{run}",
        "num_images": 24,
        "num_expected": 24,
        "missing": [],
        "allow_missing": False,
        "dropped": 0,
        "metrics": {k: v for k, v in metrics.items() if v is not None},
        "ci95": {"ssim_w51": [0.5, 0.6]} if "ssim_w51" in metrics else {},
        "unavailable": {
            k: "weight pt_inception-2015-12-05-6726825d.pth not in $TORCH_HOME/hub/checkpoints"
            for k, v in metrics.items()
            if v is None
        },
        "weights": {},
        "versions": {},
        "git": None,
    }
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    return [
        metrics_file(
            tmp_path, "copy-source", ssim_w51=0.41, lpips_alex=0.52, psnr=11.0, fid_ptincv3_train=None
        ),
        metrics_file(
            tmp_path, "pose-warp", ssim_w51=0.73, lpips_alex=0.21, psnr=17.5, fid_ptincv3_train=None
        ),
    ]


def test_directions() -> None:
    assert direction("fid_incv3tv_train") == "lower" and direction("lpips_alex") == "lower"
    assert direction("ssim_g15_dr") == "higher" and direction("psnr_pad") == "higher"
    assert direction("mystery") is None and direction("mystery", {"mystery": "higher"}) == "higher"


def test_markdown_table(two_runs: list[Path]) -> None:
    md = to_markdown(build_table(load_runs(two_runs)))
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Run"))
    assert (
        header
        == "| Run | Method | Images | Mean rank | fid_ptincv3_train ↓ | lpips_alex ↓ | ssim_w51 ↑ | psnr ↑ |"
    )
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| Run")]
    # Sorted by mean rank over the metrics both runs have: pose-warp wins all three.
    assert rows[0].startswith(
        "| pose-warp | pose-warp | 24 | 1.00 | not computed[^1] | 0.2100 | 0.7300 | 17.500 |"
    )
    assert rows[1].startswith(
        "| copy-source | copy-source | 24 | 2.00 | not computed[^1] | 0.5200 | 0.4100 | 11.000 |"
    )
    assert "`pgpis-v1`" in md and "sorted best first by mean rank (1 = best) over the 3 metric(s)" in md
    assert "lpips_alex, ssim_w51, psnr" in md
    assert "[^1]: fid_ptincv3_train: weight pt_inception-2015-12-05-6726825d.pth not in" in md


def test_sort_by_and_ci(two_runs: list[Path]) -> None:
    table = build_table(load_runs(two_runs, labels=["a", "b"]), sort_by="psnr")
    assert [r.label for r in table.runs] == ["b", "a"]
    assert "0.7300 [0.5000, 0.6000]" in to_markdown(table, with_ci=True)
    with pytest.raises(ConfigError, match="--sort-by 'kid'"):
        build_table(load_runs(two_runs), sort_by="kid")


def test_csv(two_runs: list[Path]) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(build_table(load_runs(two_runs))))))
    assert [r["run"] for r in rows] == ["pose-warp", "copy-source"]
    assert float(rows[0]["ssim_w51"]) == 0.73 and rows[0]["ssim_w51_ci95_low"] == "0.5"
    assert rows[0]["fid_ptincv3_train"] == "" and "pt_inception" in rows[0]["fid_ptincv3_train_unavailable"]
    assert rows[0]["num_images"] == "24" and rows[0]["protocol"] == "pgpis-v1"


def test_mixed_protocols_refused_unless_allowed(tmp_path: Path) -> None:
    runs = [
        metrics_file(tmp_path, "a", ssim_w51=0.5),
        metrics_file(tmp_path, "b", protocol="cfld-256", ssim_w51=0.6),
    ]
    with pytest.raises(ConfigError, match="different protocols \\(cfld-256, pgpis-v1\\).*--allow-mixed"):
        build_table(load_runs(runs))
    md = to_markdown(build_table(load_runs(runs), allow_mixed=True))
    assert (
        "| Run | Method | Protocol | Images |" in md
        and "NOT comparable" in md
        and "| b | b | cfld-256 |" in md
    )


def test_missing_images_and_nan_are_footnoted(tmp_path: Path) -> None:
    path = metrics_file(tmp_path, "partial", ssim_w51=0.5, psnr=12.0)
    data = json.loads(path.read_text())
    data.update(num_images=20, allow_missing=True, dropped=2)
    data["metrics"]["psnr"] = float("nan")
    path.write_text(json.dumps(data))
    run = load_run(path)
    assert "psnr" not in run.metrics and "not a finite number" in run.unavailable["psnr"]
    md = to_markdown(build_table([run]))
    assert "| partial | partial | 20/24[^1][^2] |" in md
    assert (
        "4 generated image(s) missing" in md
        and "2 image(s) dropped" in md
        and "psnr: not a finite number" in md
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "not a readable metrics JSON file"),
        (json.dumps({"metrics": {"ssim_w51": 1}}), "no 'protocol' name"),
        (json.dumps({"protocol": "p"}), "no 'metrics' object"),
        (json.dumps({"protocol": "p", "metrics": {"ssim_w51": "high"}}), "metrics.ssim_w51 must be a number"),
    ],
)
def test_bad_metrics_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_run(path)
    assert str(path) in str(err.value)


def test_cli_writes_atomically_and_keeps_old_report_on_error(
    two_runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, out_csv = tmp_path / "reports" / "metrics.md", tmp_path / "reports" / "metrics.csv"
    argv = ["report", "--metrics", *map(str, two_runs), "--out", str(out), "--csv", str(out_csv)]
    assert main(argv) == 0
    assert "| pose-warp |" in out.read_text() and out_csv.read_text().startswith("run,method,protocol")
    before = out.read_text()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"protocol": "pidm", "metrics": {"ssim_w51": "high"}}))
    assert main(["report", "--metrics", str(two_runs[0]), str(other), "--out", str(out)]) == 2
    assert "metrics.ssim_w51 must be a number" in capsys.readouterr().err
    assert out.read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.csv", "metrics.md"]
    assert main(["report", "--metrics", str(tmp_path / "nope.json"), "--out", str(out)]) == 2
    assert "metrics file not found" in capsys.readouterr().err


def test_folder_of_metrics_files_is_expanded_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    for run, ssim in (("pose-warp", 0.7), ("copy-source", 0.4)):
        src = metrics_file(tmp_path, run, ssim_w51=ssim)
        (folder / f"{run}.json").write_text(src.read_text())
    runs = load_runs([folder])
    assert [r.label for r in runs] == ["copy-source", "pose-warp"]
    assert [r.metrics["ssim_w51"] for r in runs] == [0.4, 0.7]


def test_empty_folder_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no metrics"):
        load_runs([tmp_path / "empty"])


def test_report_attach_needs_existing_paths(two_runs: list[Path], tmp_path: Path, capsys) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["report", "--metrics", *map(str, two_runs), "--out", str(tmp_path / "t.md"), "--mlflow", uri]
    assert main([*args, "--attach", str(tmp_path / "absent")]) == 2
    assert "absent not found" in capsys.readouterr().err and not (tmp_path / "t.md").exists()


def test_html_report_holds_the_table_cells_footnotes_and_figures(
    two_runs: list[Path], tmp_path: Path, capsys
) -> None:
    import base64
    import re

    from bench.report.tables import layout

    figures = tmp_path / "figures"
    figures.mkdir()
    pngs = {"b_metrics.png": b"\x89PNG second", "a_grid.png": b"\x89PNG first"}
    for name, data in pngs.items():
        (figures / name).write_bytes(data)
    page_path = tmp_path / "index.html"
    args = [
        "report",
        "--metrics",
        *map(str, two_runs),
        "--out",
        str(tmp_path / "t.md"),
        "--html",
        str(page_path),
    ]
    assert main([*args, "--figures", str(figures)]) == 0
    page = page_path.read_text()
    lay = layout(build_table(load_runs(two_runs)))
    for row in lay.rows:
        for text, numbers in row:
            refs = "".join(f'<sup><a href="#notepgpis-v1-{n}">{n}</a></sup>' for n in numbers)
            assert f">{text}{refs}</td>" in page
    for text, n in lay.notes.items():
        assert f'<li id="notepgpis-v1-{n}">{text}</li>' in page
    embedded = re.findall(r'<h2>([^<]+)</h2><img src="data:image/png;base64,([^"]+)"', page)
    assert [(name, base64.b64decode(data)) for name, data in embedded] == sorted(pngs.items())
    # A figure path that is not a PNG stops the report before anything is written.
    (tmp_path / "notes.txt").write_text("x")
    out2 = tmp_path / "t2.md"
    code = main(["report", "--metrics", *map(str, two_runs), "--out", str(out2), "--html", str(tmp_path / "i2.html"),
                 "--figures", str(tmp_path / "notes.txt")])  # fmt: skip
    assert code == 2 and "neither a PNG file nor a folder" in capsys.readouterr().err
    assert not out2.exists() and not (tmp_path / "i2.html").exists()


def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    # A run label or an unavailability reason starting with =, +, -, @ would run as a formula in a
    # spreadsheet (CSV injection); numbers, negative ones included, stay numbers.
    path = metrics_file(tmp_path, "=HYPERLINK(1)", ssim_w51=-0.25, psnr=None)
    data = json.loads(path.read_text())
    data["unavailable"] = {"psnr": "@SUM(A1)"}
    data["method"] = {"name": "+cmd"}
    path.write_text(json.dumps(data))
    others = [metrics_file(tmp_path, label, ssim_w51=0.1) for label in ("-x", "@y")]
    rows = list(csv.DictReader(io.StringIO(to_csv(build_table(load_runs([path, *others]))))))
    by_run = {r["run"]: r for r in rows}
    assert set(by_run) == {"'=HYPERLINK(1)", "'-x", "'@y"}
    first = by_run["'=HYPERLINK(1)"]
    assert first["method"] == "'+cmd" and first["psnr_unavailable"] == "'@SUM(A1)"
    assert first["ssim_w51"] == "-0.25"
    for row in rows:
        assert not any(str(v).startswith(("=", "+", "@")) for v in row.values())


def _protocol_runs(tmp_path: Path) -> Path:
    folder = tmp_path / "metrics"
    values = {
        "pgpis-v1": {"copy-source": (0.40, 11.0), "cfld-tiny": (0.61, 16.4)},
        "cfld-256": {"copy-source": (0.32, 11.9), "cfld-tiny": (0.60, 16.3)},
    }
    for protocol, runs in values.items():
        for run, (ssim, psnr) in runs.items():
            src = metrics_file(tmp_path / "src" / protocol, run, protocol=protocol, ssim_w51=ssim, psnr=psnr,
                               **{f"fid_{'ptincv3' if protocol == 'pgpis-v1' else 'incv3tv'}_train": None})  # fmt: skip
            data = json.loads(src.read_text())
            data["method"] = {"name": "cfld" if run == "cfld-tiny" else run}
            if protocol == "cfld-256":  # as evaluate records it: generated on the synthetic set
                data["provenance"] = {
                    "method": data["method"]["name"],
                    "config": {},
                    "checkpoint_sha256": None,
                    "seed": 3407,
                    "sampler": None,
                    "steps": None,
                    "guidance": None,
                    "dataset_files_sha256": {"dataset_json_sha256": "ab" * 32},
                    "num_pairs": 24,
                }
            data["unavailable"] = {
                k: "weight file x.pth is not at /y. Run `pgpis fetch-weights pt_inception` when online" for k in data["unavailable"]
            }  # fmt: skip
            (folder / protocol).mkdir(parents=True, exist_ok=True)
            (folder / protocol / f"{run}.json").write_text(json.dumps(data))
    return folder


def test_one_table_per_protocol_sensitivity_banner_and_paper_column(tmp_path: Path) -> None:
    folder = _protocol_runs(tmp_path)
    out = tmp_path / "r"
    argv = ["report", "--metrics", str(folder), "--out", str(out / "m.md"), "--csv", str(out / "m.csv"),
            "--scores", str(out / "scores"), "--plots", str(out / "plots"), "--html", str(out / "i.html")]  # fmt: skip
    assert main(argv) == 0
    md = (out / "m.md").read_text()
    # The recommended protocol first, then the others; footnotes of each table named apart.
    assert (
        md.index("## Protocol `pgpis-v1`")
        < md.index("## Protocol `cfld-256`")
        < md.index("## Protocol sensitivity")
    )
    assert "[^pgpis-v1-1]:" in md and "[^cfld-256-1]:" in md
    # Banner: every metric not computed, and the one command that computes them.
    assert "> **Not computed:** `fid_ptincv3_train`, `fid_incv3tv_train`." in md
    assert "> **Fix:** `pgpis fetch-weights pt_inception && dvc repro`" in md
    # The same run's number under each protocol, side by side, with the spread.
    assert "| cfld-tiny | ssim_w51 | 0.6100 | 0.6000 | 0.0100 |" in md
    assert "| copy-source | psnr | 11.000 | 11.900 | 0.900 |" in md
    # Paper-reported beside reproduced for CFLD, flagged unverified, with its source.
    assert "| cfld-tiny | CFLD (256x176) | ssim_w51 | 0.7378 | 0.6100 |" in md and "| unverified |" in md
    cfld_256 = md.split("## Protocol `cfld-256`")[1].split("## Protocol sensitivity")[0]
    assert "unverified; not comparable: this run is on the synthetic set" in cfld_256
    # Settings as a table, not a JSON blob.
    assert "| Setting | Value |" in md and "| eval_size |" not in md.split("## Protocol sensitivity")[1]
    # dvc metrics: numbers only, one file per protocol and run; dvc plots: one CSV per metric.
    assert json.loads((out / "scores" / "cfld-256" / "cfld-tiny.json").read_text()) == {
        "psnr": 16.3,
        "ssim_w51": 0.6,
    }
    plot = (out / "plots" / "pgpis-v1" / "ssim_w51.csv").read_text().splitlines()
    assert plot[0] == "run,value,ci95_low,ci95_high" and plot[1].startswith("cfld-tiny,0.61,")
    rows = list(csv.DictReader(io.StringIO((out / "m.csv").read_text())))
    assert sorted((r["protocol"], r["run"]) for r in rows) == sorted(
        (p, r) for p in ("pgpis-v1", "cfld-256") for r in ("copy-source", "cfld-tiny")
    )
    page = (out / "i.html").read_text()
    assert 'class="banner"' in page and "Protocol sensitivity" in page and "Paper-reported" in page
    # A scores file of a run no longer reported is removed (the folder mirrors the report).
    stale = out / "scores" / "pidm" / "gone.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    assert main(argv) == 0 and not stale.exists() and not stale.parent.exists()


def test_kid_std_over_subsets_is_shown_beside_its_value(tmp_path: Path) -> None:
    paths = [
        metrics_file(tmp_path, run, protocol="pgpis-v2", kid_ptincv3_train=v)
        for run, v in (("a", 0.012), ("b", 0.034))
    ]
    for path, std in zip(paths, (0.0021, 0.0043), strict=True):
        data = json.loads(path.read_text())
        data["metric_details"] = {"kid_ptincv3_train": {"std": std, "subsets": 100, "subset_size": 24}}
        path.write_text(json.dumps(data))
    table = build_table([load_run(p) for p in paths])
    assert table.directions["kid_ptincv3_train"] == "lower" and table.runs[0].label == "a"
    md = to_markdown(table, with_ci=True)
    assert "0.01200 ± 0.00210" in md and "±: standard deviation over the metric's random subsets" in md
    assert "kid_ptincv3_train ↓" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert [r["kid_ptincv3_train_std"] for r in rows] == ["0.0021", "0.0043"]
