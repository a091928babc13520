"""The split files as they circulate: every legitimate form of the real files we ship reads to the
same pairs and keypoints as the canonical files; broken forms are refused with file:line.

Forms seen in public copies (deepfashion.md §2, §9): AttentionGAN's pairs file has no header;
FineURRight/Step-Network's copies use In-shop path names (``fashion/WOMEN/...``) and its annotation
header was padded by a spreadsheet with 34 empty cells; the original writer puts a space after each
colon; pandas' default ``to_csv`` adds an index column; Windows tools add CRLF and a BOM.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.data.deepfashion import read_annotations, read_list, read_pairs, unflatten_name
from bench.errors import DataError

PAIRS = "fasion-resize-pairs-test.csv"
ANN = "fasion-resize-annotation-test.csv"
LIST = "test.lst"


def path_form(root: str) -> Callable[[str], str]:
    return lambda name: unflatten_name(name, root=root)


def windows_path(name: str) -> str:
    return unflatten_name(name, root="img").replace("/", "\\")


def map_pairs(text: str, fn: Callable[[str], str]) -> str:
    lines = text.splitlines()
    return "\n".join([lines[0]] + [",".join(fn(n) for n in line.split(",")) for line in lines[1:]]) + "\n"


def map_annotations(text: str, fn: Callable[[str], str]) -> str:
    lines = text.splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        name, rest = line.split(":", 1)
        out.append(f"{fn(name)}:{rest}")
    return "\n".join(out) + "\n"


PAIR_FORMS: dict[str, Callable[[str], str]] = {
    "no header (AttentionGAN)": lambda t: t.split("\n", 1)[1],
    "CRLF and BOM": lambda t: "\ufeff" + t.replace("\n", "\r\n"),
    "pandas index column": lambda t: "\n".join(
        [",from,to"] + [f"{i},{line}" for i, line in enumerate(t.splitlines()[1:])]
    ) + "\n",
    "index column re-saved (Unnamed: 0)": lambda t: "\n".join(
        ["Unnamed: 0,from,to"] + [f"{i},{line}" for i, line in enumerate(t.splitlines()[1:])]
    ) + "\n",
    "path form, fashion/ root (Step-Network)": lambda t: map_pairs(t, path_form("fashion")),
    "path form, img_highres/ root": lambda t: map_pairs(t, path_form("img_highres")),
    "Windows path form": lambda t: map_pairs(t, windows_path),
    "spaces, quotes, empty trailing cells": lambda t: "\n".join(
        [t.splitlines()[0]] + [" " + line.replace(",", ' , "', 1) + '" ,,' for line in t.splitlines()[1:]]
    ) + "\n",
    "blank lines": lambda t: t.replace("\n", "\n\n", 50),
}  # fmt: skip

ANNOTATION_FORMS: dict[str, Callable[[str], str]] = {
    "writer's form with spaces": lambda t: t.split("\n", 1)[0]
    + "\n"
    + t.split("\n", 1)[1].replace(":[", ": ["),
    "Step-Network: padded header, path names, odd spacing": lambda t: map_annotations(
        t.replace("name:keypoints_y:keypoints_x", "name:keypoints_y:keypoints_x" + "," * 34, 1).replace(", ", ","),
        path_form("fashion"),
    ),
    "no header": lambda t: t.split("\n", 1)[1],
    "CRLF, BOM, rows padded with empty cells": lambda t: "\ufeff"
    + t.replace("\n", ",,,\r\n").replace("keypoints_x,,,", "keypoints_x", 1),
    "Windows path form": lambda t: map_annotations(t, windows_path),
}  # fmt: skip

LIST_FORMS: dict[str, Callable[[str], str]] = {
    "path form": lambda t: "".join(unflatten_name(n, root="img") + "\n" for n in t.split()),
    "CRLF, BOM, trailing spaces, no final newline": lambda t: "\ufeff" + t.replace("\n", "  \r\n").rstrip(),
}


@functools.cache
def _read_canonical(folder: Path) -> dict:
    return {
        "pairs": read_pairs(folder / PAIRS),
        "annotations": read_annotations(folder / ANN),
        "list": read_list(folder / LIST),
        "text": {n: (folder / n).read_text() for n in (PAIRS, ANN, LIST)},
    }


@pytest.fixture
def canonical(splits_dir: Path) -> dict:
    """The real split files we ship, read once per session."""
    return _read_canonical(splits_dir)


@pytest.mark.parametrize("form", sorted(PAIR_FORMS))
def test_pairs_forms_read_the_same(form: str, canonical: dict, tmp_path: Path) -> None:
    path = tmp_path / PAIRS
    path.write_text(PAIR_FORMS[form](canonical["text"][PAIRS]), newline="")
    assert read_pairs(path) == canonical["pairs"]
    assert len(canonical["pairs"]) == 8570


@pytest.mark.parametrize("form", sorted(ANNOTATION_FORMS))
def test_annotation_forms_read_the_same(form: str, canonical: dict, tmp_path: Path) -> None:
    path = tmp_path / ANN
    path.write_text(ANNOTATION_FORMS[form](canonical["text"][ANN]), newline="")
    got = read_annotations(path)
    assert list(got) == list(canonical["annotations"]) and len(got) == 4038
    assert all(np.array_equal(got[n], canonical["annotations"][n]) for n in got)


@pytest.mark.parametrize("form", sorted(LIST_FORMS))
def test_list_forms_read_the_same(form: str, canonical: dict, tmp_path: Path) -> None:
    path = tmp_path / LIST
    path.write_text(LIST_FORMS[form](canonical["text"][LIST]), newline="")
    assert read_list(path) == canonical["list"]


GOOD = "fashionWOMENDressesid0000000101_1front.jpg"
OTHER = "fashionWOMENDressesid0000000101_2side.jpg"
ROW = ":[" + ", ".join(["1"] * 18) + "]:[" + ", ".join(["2"] * 18) + "]"

BROKEN = {
    # (file kind, content, expected message part)
    "pairs: a third column (DogCFLD's garment pairs)": ("pairs", f"from,to,garment\n{GOOD},{OTHER},x.jpg\n", "line 1"),
    "pairs: repeated pair": ("pairs", f"from,to\n{GOOD},{OTHER}\n{OTHER},{GOOD}\n{GOOD},{OTHER}\n", "line 4: .* repeats line 2"),
    "pairs: index column on some rows only": ("pairs", f",from,to\n0,{GOOD},{OTHER}\n{OTHER},{GOOD}\n", "line 3"),
    "pairs: not an In-shop path (ADGAN's mangled form)": (
        "pairs", f"from,to\n{GOOD},fashion\\MEN\\Shirts_Polos\\id_0000180202_4_full.jpg\n", "line 2: .*neither a flat name"),
    "annotation: a list cut short": ("ann", f"name:keypoints_y:keypoints_x\n{GOOD}:[1, 2]:[3, 4]\n", "line 2: keypoints_y has 2"),
    "annotation: same image in flat and path form": (
        "ann", f"name:keypoints_y:keypoints_x\n{GOOD}{ROW}\n{unflatten_name(GOOD)}{ROW}\n", "line 3: .*annotated twice"),
    "annotation: comma-separated (wrong separator)": ("ann", f"name,keypoints_y,keypoints_x\n{GOOD},1,2\n", "line 1"),
    "list: duplicate name": ("list", f"{GOOD}\n{OTHER}\n{unflatten_name(GOOD, root='img')}\n", "line 3: .*listed twice"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_forms_are_refused_with_file_and_line(case: str, tmp_path: Path) -> None:
    kind, text, problem = BROKEN[case]
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    reader = {"pairs": read_pairs, "ann": read_annotations, "list": read_list}[kind]
    with pytest.raises(DataError, match=problem) as err:
        reader(path)
    assert str(path) in str(err.value)


def test_generate_reads_a_dataset_in_the_wild_forms(tiny_root: Path, tmp_path: Path) -> None:
    """End to end: a dataset root whose split files are in Step-Network's form generates the same images
    (same pairs, same keypoints) as the canonical root."""
    import hashlib
    import shutil

    from bench.cli.main import main

    root = tiny_root
    wild = tmp_path / "wild"
    shutil.copytree(root, wild)
    ann = wild / ANN
    ann.write_text(
        map_annotations(
            ann.read_text().replace("keypoints_x", "keypoints_x" + "," * 34, 1), path_form("fashion")
        )
    )
    pairs = wild / PAIRS
    pairs.write_text(map_pairs(pairs.read_text(), path_form("fashion")).replace("\n", "\r\n"))
    outs = {}
    for name, dataset in (("canonical", root), ("wild", wild)):
        out = tmp_path / f"gen-{name}"
        assert (
            main(
                [
                    "generate",
                    "--method",
                    "pose-warp",
                    "--dataset",
                    str(dataset),
                    "--out",
                    str(out),
                    "--no-progress",
                ]
            )
            == 0
        )
        outs[name] = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.glob("*.png")}
    assert outs["wild"] == outs["canonical"] and len(outs["wild"]) == 6
