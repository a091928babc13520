"""Score any folder: PNG/JPEG/WebP, name patterns, clear messages; `pgpis fid` between folders, cached."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _metrics_data import evaluate_root, write_generated, write_root
from PIL import Image

from bench.cli.main import main
from bench.errors import DataError
from bench.metrics import engine, refstats


def _convert(folder: Path, ext: str, **save) -> None:  # noqa: ANN003
    for png in folder.glob("*.png"):
        Image.open(png).save(png.with_suffix(ext), **save)
        png.unlink()


@pytest.mark.parametrize(
    ("ext", "save", "lossy"),
    [
        (".jpg", {"quality": 95}, 4),
        (".webp", {"lossless": True}, 0),
        (".webp", {"quality": 90}, 4),
        (".jpeg", {}, 4),
    ],
)
def test_jpeg_and_webp_folders_are_scored_and_lossy_input_counted(
    tmp_path: Path, pool_fid: None, ext: str, save: dict, lossy: int
) -> None:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    png_rec, _ = evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    _convert(tmp_path / "gen", ext, **save)
    rec, rows = evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    assert rec["num_images"] == 4 and rec["input_formats"] == {ext: 4} and rec["lossy_input"] == lossy
    if not lossy:  # lossless WebP decodes to the PNG's pixels: the same numbers
        assert rec["metrics"] == png_rec["metrics"]


def test_a_pair_in_two_formats_is_refused(tmp_path: Path, pool_fid: None) -> None:
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    Image.open(tmp_path / "gen" / f"{ids[1]}.png").save(tmp_path / "gen" / f"{ids[1]}.jpg")
    with pytest.raises(DataError, match="different formats") as err:
        evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    assert f"{ids[1]}.png" in str(err.value) and f"{ids[1]}.jpg" in str(err.value)


def test_names_matching_no_pair_say_what_was_found_and_name_pattern_reads_them(
    tmp_path: Path, pool_fid: None
) -> None:
    root = write_root(tmp_path / "data")
    ids = write_generated(tmp_path / "gen", root, (256, 176))
    ref, _ = evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    for i, pid in enumerate(ids):
        (tmp_path / "gen" / f"{pid}.png").rename(tmp_path / "gen" / f"img_{i:05d}.png")
    with pytest.raises(DataError) as err:
        evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path)
    msg = str(err.value)
    assert "found 4 .png files named like `img_00000.png`" in msg and "--name-pattern" in msg
    assert f"`{ids[0]}.png`" in msg and "{src_stem}" in msg

    for i, pid in enumerate(ids):
        (tmp_path / "gen" / f"img_{i:05d}.png").rename(tmp_path / "gen" / f"{pid}_vis.png")
    rec, _ = evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path, name_pattern="{pid}_vis")
    assert rec["metrics"] == ref["metrics"] and rec["name_pattern"] == "{pid}_vis"
    with pytest.raises(Exception, match="bad pattern"):
        evaluate_root(root, tmp_path / "gen", "cfld-256", tmp_path, name_pattern="{nope}")


def test_released_and_evaluate_share_one_placeholder_declaration() -> None:
    import inspect

    import methods.released.method as released
    from bench import pair_names

    assert "format_names" in inspect.getsource(released) and "pid" in pair_names.PLACEHOLDERS
    src = inspect.getsource(released)
    assert '"src_stem": Path(source).stem' not in src  # no second copy of the fields


def test_fid_between_folders_and_against_cached_statistics(
    tmp_path: Path, pool_fid: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    base = [
        "fid",
        "--images",
        str(tmp_path / "gen"),
        "--protocol",
        "cfld-256",
        "--allow-unverified-weights",
        "--no-progress",
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    out = tmp_path / "fid.json"
    assert main([*base, "--reference", str(root / "train_highres"), "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    assert first["num_images"] == 4 and first["num_reference"] == 5
    assert not any(first["refstats"]["images"]["cached"].values())

    calls = []
    real = engine.stream_features
    monkeypatch.setattr(
        "bench.metrics.setlevel.stream_features", lambda *a, **k: calls.append(a[4]) or real(*a, **k)
    )
    assert main([*base, "--reference", str(root / "train_highres"), "--out", str(out)]) == 0
    second = json.loads(out.read_text())
    assert second["metrics"] == first["metrics"] and calls == [[], []]  # both sets read back from the cache

    # the reference as a refstats file: the FID's name says which split it came from
    npz = tmp_path / "ref.npz"
    assert (
        main(
            [
                "refstats",
                "--dataset",
                str(root),
                "--protocol",
                "cfld-256",
                "--out",
                str(npz),
                "--allow-unverified-weights",
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert main([*base, "--reference", str(npz), "--out", str(out)]) == 0
    assert "fid_incv3tv_train" in json.loads(out.read_text())["metrics"]
    st = refstats.load(npz)
    np.savez(tmp_path / "plain.npz", mu=st.mu, sigma=st.sigma)
    assert main([*base, "--reference", str(tmp_path / "plain.npz")]) == 0
    assert "fid_incv3tv_npz" in capsys.readouterr().out
    assert main([*base, "--reference", str(tmp_path / "nowhere")]) == 2


def test_fid_with_no_computable_metric_fails_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no weights in this test's TORCH_HOME: every FID extractor is missing
    root = write_root(tmp_path / "data")
    write_generated(tmp_path / "gen", root, (256, 176))
    out = tmp_path / "fid.json"
    args = ["fid", "--images", str(tmp_path / "gen"), "--reference", str(root / "train_highres")]
    code = main([*args, "--protocol", "cfld-256", "--no-progress", "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert "no metric of cfld-256 could be computed" in err and "pgpis fetch-weights" in err
