"""Bad dataset input through the real CLI (`pgpis generate` with copy-source reads it via bench.data):
exit code 2, a message naming the file and the problem, earlier outputs untouched."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from bench.cli.main import main

PAIRS = "fasion-resize-pairs-test.csv"
ANN = "fasion-resize-annotation-test.csv"


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def first_image(root: Path) -> Path:
    return sorted((root / "test_highres").iterdir())[0]


def drop_annotation(root: Path) -> str:
    lines = (root / ANN).read_text().splitlines()
    name = lines.pop(1).split(":")[0]
    (root / ANN).write_text("\n".join(lines) + "\n")
    return name


def short_row(root: Path) -> str:
    lines = (root / ANN).read_text().splitlines()
    lines[2] = lines[2].replace("[", "[7, ", 1)  # 19 y values
    (root / ANN).write_text("\n".join(lines) + "\n")
    return "line 3: keypoints_y has 19 values"


CASES = {
    "missing image": lambda root: (first_image(root).unlink(), "missing from .*test_highres")[1],
    "truncated image": lambda root: (
        first_image(root).write_bytes(first_image(root).read_bytes()[:200]),
        "corrupt or truncated",
    )[1],
    "unannotated pair image": lambda root: f"no row in .*: .*{drop_annotation(root)}",
    "wrong keypoint count": short_row,
    "pairs with wrong separator": lambda root: (
        (root / PAIRS).write_text((root / PAIRS).read_text().replace(",", ";")),
        "expected the comma-separated header 'from,to'",
    )[1],
    "annotations with wrong separator": lambda root: (
        (root / ANN).write_text((root / ANN).read_text().replace(":", "\t")),
        "wrong separator",
    )[1],
    "pairs with wrong header": lambda root: (
        (root / PAIRS).write_text((root / PAIRS).read_text().replace("from,to", "source,target")),
        "header 'from,to'",
    )[1],
    "empty pairs file": lambda root: ((root / PAIRS).write_text(""), "pairs file is empty")[1],
}
FILE_OF = {"missing image": "test_highres", "truncated image": "test_highres", "unannotated pair image": ANN,
           "wrong keypoint count": ANN, "annotations with wrong separator": ANN}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_and_keeps_earlier_outputs(case, tiny_root, tmp_path, capsys):
    out = tmp_path / "generated"
    args = ["generate", "--method", "copy-source", "--dataset", str(tiny_root), "--no-progress"]
    assert main([*args, "--out", str(out)]) == 0
    before = digest(out)
    capsys.readouterr()
    problem = CASES[case](tiny_root)
    # A fresh output folder (resume would skip finished pairs without reading their images).
    code = main([*args, "--out", str(tmp_path / "again")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert FILE_OF.get(case, PAIRS) in err
    assert re.search(problem, err), err
    assert digest(out) == before
