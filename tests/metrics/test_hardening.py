"""Issue 17 rows owned by the evaluation engine: odd-size image blamed, outputs checked before the work,
committed together (disk full leaves the old pair), never replacing what is not a regular file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from _metrics_data import evaluate_root, write_generated, write_root
from PIL import Image

from bench.cli.main import main
from bench.errors import DataError
from bench.metrics import engine, outputs


def test_odd_size_image_is_blamed_even_when_it_comes_first(tmp_path: Path, pool_fid: None) -> None:
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    first = tmp_path / "gen" / f"{ids[0]}.png"  # the first pair the engine reads
    Image.open(first).resize((170, 250)).save(first)
    with pytest.raises(DataError) as err:
        evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    msg = str(err.value)
    blamed = {p for p in (tmp_path / "gen").glob("*.png") if f"{p}: wrong size" in msg}
    assert blamed == {first} and "250x170" in msg and "other 3 images are 256x176" in msg


def _cmd(root: Path, gen: Path, out: Path, csv: Path) -> list[str]:
    return [
        "evaluate",
        "--protocol",
        "cfld-256",
        "--images",
        str(gen),
        "--dataset",
        str(root),
        "--out",
        str(out),
        "--per-image",
        str(csv),
        "--allow-unverified-weights",
        "--no-progress",
        "--bootstrap",
        "10",
        "--device",
        "cpu",
        "--cache-dir",
        str(root.parent / "cache"),
    ]


@pytest.fixture
def scored(tmp_path: Path, pool_fid: None) -> tuple[Path, Path]:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    return root, tmp_path / "gen"


def test_unwritable_output_is_refused_before_any_scoring(
    tmp_path: Path,
    scored: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, gen = scored
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: pytest.fail("scoring ran before the check"))
    (tmp_path / "afile").write_text("x")
    bad = tmp_path / "afile" / "metrics.json"  # its folder cannot exist: a file is in the way
    assert main(_cmd(root, gen, bad, tmp_path / "p.csv")) == 2
    assert f"{bad}: cannot write" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        assert main(_cmd(root, gen, ro / "m.json", tmp_path / "p.csv")) == 2


def test_an_output_that_is_not_a_regular_file_is_never_replaced(
    tmp_path: Path, scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, gen = scored
    folder = tmp_path / "is_a_folder.csv"
    folder.mkdir()
    assert main(_cmd(root, gen, tmp_path / "m.json", folder)) == 2
    assert "refusing to replace it" in capsys.readouterr().err and folder.is_dir()
    if Path("/dev/null").exists():
        assert main(_cmd(root, gen, tmp_path / "m.json", Path("/dev/null"))) == 2
        assert Path("/dev/null").is_char_device()


def test_disk_full_keeps_the_previous_pair_of_outputs(
    tmp_path: Path,
    scored: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, gen = scored
    out, csv = tmp_path / "r" / "metrics.json", tmp_path / "r" / "per_image.csv"
    assert main(_cmd(root, gen, out, csv)) == 0
    before = (out.read_bytes(), csv.read_bytes())
    Image.open(next(gen.glob("*.png"))).rotate(90).save(next(gen.glob("*.png")))  # new numbers

    def full(rows):  # noqa: ANN001, ANN202
        def write(tmp: Path) -> None:
            tmp.write_text("pair_id\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return write

    monkeypatch.setattr(outputs, "_csv_writer", full)
    assert main(_cmd(root, gen, out, csv)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "nothing was replaced" in err
    assert (out.read_bytes(), csv.read_bytes()) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json", "per_image.csv"]  # no temps left
