"""`pgpis prepare` on a tiny fake img_highres tree / zip made in tmp."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import unflatten_name
from bench.data.prepare import prepare
from bench.errors import DataError

TRAIN = ["fashionWOMENDressesid9100000101_1front.jpg", "fashionWOMENDressesid9100000101_2side.jpg"]
TEST = ["fashionMENTees_Tanksid9200000101_1front.jpg", "fashionMENTees_Tanksid9200000101_7additional.jpg"]


def jpeg_bytes(seed: int) -> bytes:
    import io

    pixels = np.random.default_rng(seed).integers(0, 255, (60, 40, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture
def inshop(tmp_path: Path) -> dict[str, Path]:
    """``img_highres/`` in In-shop path form, a splits folder, and the expected bytes per flat name."""
    images = tmp_path / "img_highres"
    for i, name in enumerate([*TRAIN, *TEST, "fashionWOMENSkirtsid9300000101_1front.jpg"]):  # last: unlisted
        path = images / unflatten_name(name, root="img_highres").split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(i))
    (images / "README.txt").write_text("not an image")
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "train.lst").write_text("\n".join(TRAIN) + "\n")
    (splits / "test.lst").write_text("\n".join(TEST) + "\n")
    (splits / "fasion-resize-pairs-test.csv").write_text(f"from,to\n{TEST[0]},{TEST[1]}\n")
    return {"images": images, "splits": splits, "out": tmp_path / "out"}


def source_of(images: Path, name: str) -> Path:
    return images / unflatten_name(name, root="img_highres").split("/", 1)[1]


def test_folder_hardlinked_and_rerun_is_a_noop(inshop, capsys):
    images, splits, out = inshop["images"], inshop["splits"], inshop["out"]
    args = ["prepare", "--images", str(images), "--splits", str(splits), "--out", str(out)]
    assert main(args) == 0
    assert "placed train 2, test 2 images (hardlink)" in capsys.readouterr().out
    assert sorted(os.listdir(out / "train_highres")) == sorted(TRAIN)
    assert sorted(os.listdir(out / "test_highres")) == sorted(TEST)
    for split, names in (("train", TRAIN), ("test", TEST)):
        for name in names:
            dest = out / f"{split}_highres" / name
            assert dest.read_bytes() == source_of(images, name).read_bytes()
            assert dest.stat().st_ino == source_of(images, name).stat().st_ino
    # The split files come along, so out is a complete root.
    assert (out / "test.lst").read_text() == (splits / "test.lst").read_text()
    assert (out / "fasion-resize-pairs-test.csv").exists()
    assert [p for p in os.listdir(out) if p.startswith(".")] == []
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_copy_mode_makes_independent_files(inshop):
    report = prepare(inshop["images"], inshop["splits"], inshop["out"], link="copy")
    assert report.method == "copy" and report.copied == {"train": 2, "test": 2}
    dest = inshop["out"] / "test_highres" / TEST[0]
    assert dest.stat().st_ino != source_of(inshop["images"], TEST[0]).stat().st_ino


@pytest.mark.parametrize("root", ["img", "img_highres"])
def test_zip(inshop, tmp_path, root):
    archive = tmp_path / "img_highres.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(inshop["images"].rglob("*")):
            zf.write(path, f"{root}/{path.relative_to(inshop['images']).as_posix()}")
        zf.writestr("__MACOSX/._junk.jpg", b"junk")
    prepare(archive, inshop["splits"], inshop["out"])
    for name in TEST:
        assert (inshop["out"] / "test_highres" / name).read_bytes() == source_of(
            inshop["images"], name
        ).read_bytes()


def test_every_missing_image_is_named_and_nothing_written(inshop, capsys):
    images, out = inshop["images"], inshop["out"]
    source_of(images, TRAIN[1]).unlink()
    source_of(images, TEST[0]).unlink()
    code = main(["prepare", "--images", str(images), "--splits", str(inshop["splits"]), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "2 image(s) listed" in err and "missing" in err
    assert TRAIN[1] in err and TEST[0] in err and "img_highres/WOMEN/Dresses/id_91000001/01_2_side.jpg" in err
    assert not (out / "train_highres").exists() and not (out / "test_highres").exists()
    assert not (out / "test.lst").exists()  # split files only arrive with a complete result


def test_unreadable_images_are_named_and_earlier_outputs_kept(inshop):
    images, out = inshop["images"], inshop["out"]
    prepare(images, inshop["splits"], out)
    before = {p.name: p.read_bytes() for p in (out / "test_highres").iterdir()}
    # A new list needs a re-run; two of its images are damaged.
    (inshop["splits"] / "test.lst").write_text("\n".join([*TEST, TRAIN[0]]) + "\n")
    bad = source_of(images, TEST[1])
    bad.unlink()  # break the hardlink before damaging, so the earlier output really is independent
    bad.write_bytes(jpeg_bytes(3)[:300])
    source_of(images, TRAIN[0]).unlink()
    source_of(images, TRAIN[0]).write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="2 image\\(s\\) are unreadable") as err:
        prepare(images, inshop["splits"], out)
    assert "01_7_additional.jpg" in str(err.value) and "01_1_front.jpg" in str(err.value)
    assert {p.name: p.read_bytes() for p in (out / "test_highres").iterdir()} == before
    assert [p for p in os.listdir(out) if p.startswith(".")] == []
    # Without the decode check the damaged files pass (the user asked for speed).
    prepare(images, inshop["splits"], out, verify=False)
    assert (out / "test_highres" / TRAIN[0]).read_bytes() == b"\x00" * 100


def test_bad_sources(inshop, tmp_path):
    with pytest.raises(DataError, match="image folder or zip not found.*datasets/README.md"):
        prepare(tmp_path / "nothere", inshop["splits"], inshop["out"])
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"nope")
    with pytest.raises(DataError, match="neither a folder nor a zip"):
        prepare(junk, inshop["splits"], inshop["out"])
    with pytest.raises(DataError, match="train.lst: image list not found"):
        prepare(inshop["images"], tmp_path, inshop["out"])


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip command to make an encrypted archive")
def test_password_protected_zip(inshop, tmp_path, capsys):
    archive = tmp_path / "img_highres.zip"
    subprocess.run(
        ["zip", "-q", "-r", "-P", "secret", str(archive), "img_highres"],
        cwd=inshop["images"].parent,
        check=True,
    )
    args = [
        "prepare",
        "--images",
        str(archive),
        "--splits",
        str(inshop["splits"]),
        "--out",
        str(inshop["out"]),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "password-protected" in err and "--password" in err and "unzip -P" in err
    assert main([*args, "--password", "wrong"]) == 2
    err = capsys.readouterr().err
    assert (
        "cannot decrypt" in err or "CRC" in err
    )  # ZipCrypto lets 1 in 256 wrong passwords through to the CRC
    assert not (inshop["out"] / "test_highres").exists()
    assert main([*args, "--password", "secret"]) == 0
    assert (inshop["out"] / "test_highres" / TEST[0]).read_bytes() == source_of(
        inshop["images"], TEST[0]
    ).read_bytes()


def test_ambiguous_source_is_refused(inshop):
    """A folder holding both img/ and img_highres/ maps two files to each name: refuse, do not guess."""
    shutil.copytree(inshop["images"], inshop["images"] / "img")
    with pytest.raises(DataError, match="occur twice") as err:
        prepare(inshop["images"], inshop["splits"], inshop["out"])
    assert TEST[0] in str(err.value)
    assert not inshop["out"].exists() or not any(inshop["out"].iterdir())
