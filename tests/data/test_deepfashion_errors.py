"""Bad split files and images: each gives a DataError naming the file and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from bench.data.deepfashion import (
    DeepFashionDataset,
    flatten_name,
    load_image,
    read_annotations,
    read_list,
    read_pairs,
    unflatten_name,
)
from bench.errors import DataError

ROW = "a.jpg:[" + ", ".join(["1"] * 18) + "]:[" + ", ".join(["2"] * 18) + "]"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("from,to\n", "no pairs"),
        ("from;to\na.jpg;b.jpg\n", "header 'from,to'"),
        ("src,dst\na.jpg,b.jpg\n", "header 'from,to'"),
        ("from,to\na.jpg,b.jpg\na.jpg\n", "line 3"),
        ("from,to\na.jpg,b.jpg,c.jpg\n", "line 2"),
    ],
)
def test_bad_pairs_files(tmp_path, text, problem):
    path = write(tmp_path, "pairs.csv", text)
    with pytest.raises(DataError, match=problem) as err:
        read_pairs(path)
    assert str(path) in str(err.value)


def test_pairs_accept_crlf_and_spaces(tmp_path):
    path = write(tmp_path, "pairs.csv", "from,to\r\na.jpg, b.jpg\r\n\r\n")
    assert read_pairs(path) == [("a.jpg", "b.jpg")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("name,keypoints_y,keypoints_x\n", "wrong separator"),
        ("name:y:x\n" + ROW + "\n", "header"),
        (
            "name:keypoints_y:keypoints_x\n" + ROW.replace("[1, ", "[", 1) + "\n",
            "line 2: keypoints_y has 17 values",
        ),
        (
            "name:keypoints_y:keypoints_x\n"
            + ROW
            + "\n"
            + ROW.replace("a.jpg", "b.jpg").replace(", 2]", "]")
            + "\n",
            "line 3: keypoints_x has 17",
        ),
        ("name:keypoints_y:keypoints_x\n" + ROW.replace(":", ",", 1) + "\n", "line 2: expected 3"),
        ("name:keypoints_y:keypoints_x\n" + ROW.replace("1, 1", "1, z") + "\n", "not an integer"),
        ("name:keypoints_y:keypoints_x\n" + ROW + "\n" + ROW + "\n", "annotated twice"),
    ],
)
def test_bad_annotation_files(tmp_path, text, problem):
    path = write(tmp_path, "ann.csv", text)
    with pytest.raises(DataError, match=problem) as err:
        read_annotations(path)
    assert str(path) in str(err.value)


def test_annotation_writer_form_with_spaces(tmp_path):
    path = write(tmp_path, "ann.csv", "name:keypoints_y:keypoints_x\n" + ROW.replace(":", ": ") + "\n")
    kps = read_annotations(path)["a.jpg"]
    assert kps.shape == (18, 2) and kps[:, 0].tolist() == [1] * 18 and kps[:, 1].tolist() == [2] * 18


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(DataError, match="not found.*pgpis fetch"):
        read_list(tmp_path / "test.lst")
    with pytest.raises(DataError, match="empty"):
        read_list(write(tmp_path, "test.lst", "\n"))


@pytest.mark.parametrize(
    "path",
    [
        "WOMEN/Dresses/id_0001/01_1_front.jpg",
        "KIDS/Dresses/id_00000001/01_1_front.jpg",
        "WOMEN/Dresses/id_00000001/01_front.jpg",
        "Dresses/id_00000001/01_1_front.jpg",
    ],
)
def test_flatten_rejects_non_inshop_paths(path):
    with pytest.raises(DataError, match="not an In-shop image path"):
        flatten_name(path)


def test_unflatten_rejects_other_names():
    with pytest.raises(DataError, match="not a flattened"):
        unflatten_name("fasionWOMENTeesTanksid0000000101_1front.jpg")


def test_load_image_modes_and_resize(tmp_path):
    gray = tmp_path / "gray.png"
    Image.new("L", (20, 30), 128).save(gray)
    img = load_image(gray)
    assert img.shape == (3, 30, 20) and img.dtype == torch.float32
    assert torch.allclose(img, torch.full_like(img, 128 / 255))
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (20, 30), (10, 20, 30, 0)).save(rgba)
    # Alpha is dropped (CFLD's convert("RGB")), not composited on white.
    assert torch.allclose(load_image(rgba)[:, 0, 0], torch.tensor([10, 20, 30]) / 255)


def test_load_image_matches_cfld_transform(tiny_root):
    from torchvision import transforms

    path = next((tiny_root / "test_highres").iterdir())
    cfld = transforms.Compose(
        [transforms.Resize([32, 22], interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
         transforms.ToTensor()]
    )  # fmt: skip
    with Image.open(path) as im:
        expected = cfld(im.convert("RGB"))
    got = load_image(path, (32, 22))
    assert got.shape == (3, 32, 22)
    assert torch.equal(got, expected)
    assert 0.0 <= got.min() and got.max() <= 1.0


def test_load_image_missing_and_truncated(tiny_root):
    path = next((tiny_root / "test_highres").iterdir())
    with pytest.raises(DataError, match="image not found") as err:
        load_image(path.with_name("nothere.jpg"))
    assert "nothere.jpg" in str(err.value)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated") as err:
        load_image(path)
    assert path.name in str(err.value)
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_image(path)


def test_dataset_reads_and_validates(tiny_root):
    ds = DeepFashionDataset(tiny_root, "test")
    assert len(ds) == 6 and len(ds.annotations) == 3
    assert ds.image_path(ds.pairs[0][0]) == tiny_root / "test_highres" / ds.pairs[0][0]
    ds.validate(decode=True)


def test_validate_reports_every_problem_at_once(tiny_root):
    names = sorted(p.name for p in (tiny_root / "test_highres").iterdir())
    (tiny_root / "test_highres" / names[0]).unlink()
    (tiny_root / "test_highres" / names[1]).unlink()
    ann = tiny_root / "fasion-resize-annotation-test.csv"
    lines = ann.read_text().splitlines()
    ann.write_text("\n".join(line for line in lines if not line.startswith(names[2])) + "\n")
    with pytest.raises(DataError) as err:
        DeepFashionDataset(tiny_root, "test").validate()
    msg = str(err.value)
    assert "missing from" in msg and names[0] in msg and names[1] in msg
    assert "no row in" in msg and names[2] in msg and str(ann) in msg


def test_validate_finds_corrupt_images_when_decoding(tiny_root):
    path = sorted((tiny_root / "test_highres").iterdir())[1]
    path.write_bytes(path.read_bytes()[:100])
    DeepFashionDataset(tiny_root, "test").validate()  # presence only: passes
    with pytest.raises(DataError, match="unreadable") as err:
        DeepFashionDataset(tiny_root, "test").validate(decode=True)
    assert path.name in str(err.value)


def test_dataset_errors_name_the_missing_files(tmp_path, tiny_root):
    with pytest.raises(DataError, match="dataset root not found"):
        DeepFashionDataset(tmp_path / "absent", "test")
    with pytest.raises(DataError, match="unknown split"):
        DeepFashionDataset(tiny_root, "val")
    shutil.rmtree(tiny_root / "test_highres")
    with pytest.raises(DataError, match="image folder .*test_highres is missing"):
        DeepFashionDataset(tiny_root, "test").validate()
    (tiny_root / "fasion-resize-pairs-test.csv").unlink()
    with pytest.raises(DataError, match="fasion-resize-pairs-test.csv: pairs file not found"):
        DeepFashionDataset(tiny_root, "test")


def test_frame_constant_matches_the_api():
    from bench.api import ANNOTATION_FRAME
    from bench.data.deepfashion import FRAME

    assert FRAME == ANNOTATION_FRAME


def test_data_tools_do_not_import_torch():
    """synth/prepare/fetch run in seconds only if importing them does not pull in torch (~4 s, 800 MB)."""
    import subprocess
    import sys

    code = "import sys, bench.data.synth, bench.data.prepare, bench.data.fetch; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
