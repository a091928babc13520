"""benchmarks/eval_deepfashion_scale.py builds its synthetic set in parallel processes: every image of
the real names is there, complete and decodable, and a second build writes nothing."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
NAMES = [f"fashionWOMENDressesid{i:08d}01_{k}.jpg" for i in range(3) for k in ("1front", "2side")]


def test_build_writes_every_image_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_DIR))  # the benchmark imports its siblings by name (so do its workers)
    scale = importlib.import_module("eval_deepfashion_scale")
    monkeypatch.setattr(
        importlib.import_module("eval_throughput"), "IMAGES_PER_TASK", 3
    )  # several tasks: a pool
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "from,to\n"
        + "".join(f"{a},{b}\n" for a, b in zip(NAMES[::2], NAMES[1::2]))
        + f"{NAMES[1]},{NAMES[0]}\n"
    )
    train = tmp_path / "train.lst"
    train.write_text("".join(f"fashionMENPantsid{i:08d}01_1front.jpg\n" for i in range(5)))

    sets = scale.build(tmp_path / "work", pairs, train, n_refs=4, n_small=2)

    gen = sorted(p.name for p in sets["gen"].glob("*.png"))
    assert gen == sorted(
        [f"{a[:-4]}_2_{b[:-4]}.png" for a, b in zip(NAMES[::2], NAMES[1::2])]
        + [f"{NAMES[1][:-4]}_2_{NAMES[0][:-4]}.png"]
    )
    refs = sorted(p.name for p in (sets["root"] / "train_highres").iterdir())
    assert refs == [f"fashionMENPantsid{i:08d}01_1front.jpg" for i in range(4)]
    assert sorted(p.name for p in (sets["root"] / "test_highres").iterdir()) == sorted(NAMES)
    files = sorted(sets["gen"].glob("*.png")) + sorted((sets["root"]).glob("*_highres/*.jpg"))
    assert not list((tmp_path / "work").rglob("*.part"))
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    assert all(a.shape == (256, 176, 3) for a in arrays)
    assert len({a.tobytes() for a in arrays}) == len(arrays)  # each image its own pixels
    assert (sets["root_small"] / "fasion-resize-pairs-test.csv").read_text().count("\n") == 3

    stamps = {f: f.stat().st_mtime_ns for f in files}
    scale.build(tmp_path / "work", pairs, train, n_refs=4, n_small=2)
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


def test_measured_processes_keep_the_callers_import_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gpu_checks.sh puts the carried wheels on PYTHONPATH; the benchmark's children must still see them
    monkeypatch.syspath_prepend(str(_DIR))
    throughput = importlib.import_module("eval_throughput")
    monkeypatch.setenv("PYTHONPATH", "/tmp/gpu_site")
    env = throughput.child_env(tmp_path)
    assert env["PYTHONPATH"].split(":") == [str(throughput.REPO), "/tmp/gpu_site"]
    assert env["TORCH_HOME"] == str(tmp_path / "torch")
    monkeypatch.delenv("PYTHONPATH")
    assert throughput.child_env(tmp_path)["PYTHONPATH"] == str(throughput.REPO)
