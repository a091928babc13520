"""`dvc plots show` / `dvc plots diff` render our chart data from a fresh clone (no DVC cache): the
data are plain files in git, the plot definition is the one in our dvc.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bench.report.document import build_document, plot_data
from bench.report.results import RunMetrics

ROOT = Path(__file__).resolve().parents[2]


def _run(label: str, protocol: str, ssim: float) -> RunMetrics:
    return RunMetrics(Path(f"{label}.json"), label, label, protocol, {}, 4, 4, 0, False,
                      {"ssim_w51": ssim, "psnr": 10 + ssim}, {"ssim_w51": (ssim - 0.1, ssim + 0.1)})  # fmt: skip


def _write_plots(project: Path, shift: float) -> None:
    runs = [_run(r, p, v + shift) for p in ("pgpis-v1", "cfld-256") for r, v in (("a", 0.4), ("b", 0.6))]
    for protocol, per_metric in plot_data(build_document(runs)).items():
        for metric, text in per_metric.items():
            path = project / "reports" / "plots" / protocol / f"{metric}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def _sh(cwd: Path, *argv: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr[-2000:]}"
    return done.stdout


def test_dvc_plots_show_and_diff_on_a_fresh_clone(tmp_path: Path) -> None:
    dvc = [sys.executable, "-m", "dvc"]
    project = tmp_path / "project"
    project.mkdir()
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {}, "plots": plots}))
    _sh(project, "git", "init", "-q")
    _sh(project, *dvc, "init", "-q")
    _write_plots(project, 0.0)
    _sh(project, "git", "add", "-A")
    _sh(project, "git", "commit", "-qm", "first")
    _write_plots(project, 0.1)
    _sh(project, "git", "commit", "-qam", "second")

    clone = tmp_path / "clone"
    _sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    shown = json.loads(_sh(clone, *dvc, "plots", "show", "--json"))
    assert not shown.get("errors"), shown.get("errors")
    names = sorted(Path(k).relative_to("reports/plots").as_posix() for k in shown["data"])
    assert names == [f"{p}/{m}.csv" for p in ("cfld-256", "pgpis-v1") for m in ("psnr", "ssim_w51")]
    # An HTML page renders too (the command a researcher types).
    _sh(clone, *dvc, "plots", "show", "-o", str(tmp_path / "html"))
    assert (tmp_path / "html" / "index.html").is_file()
    # `dvc plots diff` overlays two commits: one bar per run and revision.
    diff = json.loads(_sh(clone, *dvc, "plots", "diff", "HEAD~1", "HEAD", "--json"))
    key = next(k for k in diff["data"] if k.endswith("pgpis-v1/ssim_w51.csv"))
    spec = diff["data"][key][0]
    values = spec["content"]["data"]["values"] if "content" in spec else spec["datapoints"]
    revs = sorted({v["rev"] for v in values})
    assert revs == ["HEAD", "HEAD~1"] and len(values) == 4
