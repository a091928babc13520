"""scripts/compare_outputs.py: outputs against a committed dvc.lock, with the metrics' numeric differences."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("compare_outputs", REPO / "scripts" / "compare_outputs.py")
compare_outputs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_outputs)


def _md5(path: Path) -> str:
    return compare_outputs.md5_of(path)


def _write_lock(repo: Path) -> None:
    outs = {
        "metrics": [{"path": "reports/metrics/m.json", "md5": _md5(repo / "reports/metrics/m.json")}],
        "per_image": [{"path": "reports/per_image/m.csv", "md5": _md5(repo / "reports/per_image/m.csv")}],
    }
    stages = {name: {"cmd": "x", "outs": o} for name, o in outs.items()}
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _committed_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "reports/metrics").mkdir(parents=True)
    (repo / "reports/per_image").mkdir(parents=True)
    record = {
        "metrics": {"psnr": 16.25, "ssim_w51": 0.6},
        "ci95": {"psnr": [16.0, 16.5]},
        "timing_seconds": 5.0,
    }
    (repo / "reports/metrics/m.json").write_text(json.dumps(record))
    (repo / "reports/per_image/m.csv").write_text("pair_id,psnr\na,16.0\nb,16.5\n")
    _write_lock(repo)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results")
    return repo


def test_identical_outputs_are_the_same(tmp_path: Path) -> None:
    repo = _committed_repo(tmp_path)
    failures, report = compare_outputs.compare(repo, "HEAD", None)
    assert failures == 0
    assert report[-1].startswith("2 outputs the same, 0 differing only in provenance, 0 differing")


def test_a_rerun_differing_in_timing_only_is_named_provenance_and_fails(tmp_path: Path) -> None:
    # Outputs no longer record run facts: an old file holding one differs from the lock, and says why.
    repo = _committed_repo(tmp_path)
    record = json.loads((repo / "reports/metrics/m.json").read_text())
    (repo / "reports/metrics/m.json").write_text(json.dumps({**record, "timing_seconds": 7.5}))
    _write_lock(repo)
    failures, report = compare_outputs.compare(repo, "HEAD", None)
    assert failures == 1
    assert "provenance reports/metrics/m.json  (stage metrics)" in report
    assert "    fields that differ: timing_seconds" in report


def test_changed_numbers_are_reported_metric_by_metric_and_image_by_image(tmp_path: Path) -> None:
    repo = _committed_repo(tmp_path)
    record = {
        "metrics": {"psnr": 16.5, "ssim_w51": 0.6},
        "ci95": {"psnr": [16.2, 16.8]},
        "timing_seconds": 5.0,
    }
    (repo / "reports/metrics/m.json").write_text(json.dumps(record))
    (repo / "reports/per_image/m.csv").write_text("pair_id,psnr\na,16.0\nb,17.0\n")
    _write_lock(repo)
    failures, report = compare_outputs.compare(repo, "HEAD", None)
    assert failures == 2
    text = "\n".join(report)
    assert "DIFFERS    reports/metrics/m.json" in text
    assert (
        "psnr                 committed 16.25        now 16.5         diff +0.25  (new 95% CI width 0.6)"
        in text
    )
    assert "ssim_w51" not in text  # unchanged metrics are not listed
    assert "psnr                 1 of 2 rows differ, largest by 0.5" in text
    assert text.endswith(
        "0 outputs the same, 0 differing only in provenance, 2 differing (compared with HEAD:dvc.lock)"
    )


def test_a_folder_is_compared_file_by_file_through_the_cache(tmp_path: Path) -> None:
    root, cache = tmp_path / "gen", tmp_path / "cache"
    root.mkdir()
    (root / "a.png").write_bytes(b"image a")
    (root / "manifest.json").write_text(json.dumps({"settings": {"seed": 1}, "versions": {"git": "abc"}}))
    listing = []
    for f in sorted(root.iterdir()):
        md5 = _md5(f)
        stored = cache / "files" / "md5" / md5[:2] / md5[2:]
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(f.read_bytes())
        listing.append({"md5": md5, "relpath": f.name})
    # Another commit and path recorded: provenance only.
    (root / "manifest.json").write_text(json.dumps({"settings": {"seed": 1}, "versions": {"git": "def"}}))
    lines, provenance_only = compare_outputs.folder_differences(root, listing, cache)
    assert provenance_only and lines == ["    manifest.json: differs in versions"]
    # A changed image is a real difference, named.
    (root / "a.png").write_bytes(b"image A")
    lines, provenance_only = compare_outputs.folder_differences(root, listing, cache)
    assert not provenance_only and "    a.png: content" in lines
