"""`pgpis synthesize`: a user's photo and OpenPose/COCO poses through every built-in method."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, pair_id

sys.path.insert(0, str(Path(__file__).parent))
from _engine_data import draw_person, pose_variants  # noqa: E402

COLOURS = {"shirt": (200, 40, 40), "trousers": (30, 40, 150), "skin": (220, 180, 140), "hair": (40, 20, 10)}
OFFSET = 300  # the person's place in the wide photo (columns)


def _openpose_json(path: Path, yx: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> Path:
    """An OpenPose --write_json file (COCO-18 model) with one person at ``yx`` (256x176 frame) * scale + shift."""
    values: list[float] = []
    for y, x in yx:
        values += [0.0, 0.0, 0.0] if y < 0 else [float(x) * scale + shift, float(y) * scale, 0.9]
    path.write_text(
        json.dumps({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": values}]})
    )
    return path


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 512x1000 (HxW) landscape photo: the drawn person, 2x, at columns 300..651, and its OpenPose file.

    Framing (hand-computed): width = 512 * 176 / 256 = 352; the keypoints span x 54..122 in the
    person's frame -> 408..544 in the photo, centre 476, left = floor(476 - 176 + 0.5) = 300: the crop
    is exactly the person's 352 columns, and the keypoints map back to their 256x176 values."""
    folder = tmp_path_factory.mktemp("photo")
    person = np.asarray(
        Image.fromarray(draw_person(pose_variants()[0], COLOURS)).resize((352, 512), Image.NEAREST)
    )
    canvas = np.full((512, 1000, 3), 90, np.uint8)
    canvas[:, OFFSET : OFFSET + 352] = person
    path = folder / "me.png"
    Image.fromarray(canvas).save(path)
    return path, _openpose_json(folder / "me_keypoints.json", pose_variants()[0], 2.0, OFFSET)


def _targets(folder: Path) -> list[Path]:
    """Target poses 1 and 2 as OpenPose files in a 256x176 frame (the image beside the second gives it)."""
    raised = _openpose_json(folder / "raised.json", pose_variants()[1])
    shifted = _openpose_json(folder / "shifted_keypoints.json", pose_variants()[2])
    Image.new("RGB", (176, 256)).save(folder / "shifted.jpg")
    return [raised, shifted]


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB")).astype(np.float32)


def test_pose_warp_sequence_with_preview_and_sheet(photo: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    src, _ = photo  # its pose is found beside it (me_keypoints.json)
    targets = _targets(tmp_path)
    out = tmp_path / "seq"
    argv = ["synthesize", "--method", "pose-warp", "--source", str(src), "--target-pose", *map(str, targets),
            "--pose-frame", "256x176", "--out", str(out), "--preview", "--sheet", str(tmp_path / "sheet.png")]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cropped to columns 300..651" in printed and "image size from shifted.jpg" not in printed
    pids = ["me_2_raised", "me_2_shifted_keypoints"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p}.png" for p in pids] + [f"{p}.preview.png" for p in pids] + ["synthesize.json"]
    )
    record = json.loads((out / "synthesize.json").read_text())
    assert [p["pair_id"] for p in record["pairs"]] == pids and record["seed"] == 3407
    for pid, k in zip(pids, (1, 2)):
        result = _png(out / f"{pid}.png")
        assert result.shape == (256, 176, 3)
        truth = draw_person(pose_variants()[k], COLOURS).astype(np.float32)
        source = draw_person(pose_variants()[0], COLOURS).astype(np.float32)
        # The person really moved: the warp recovers most of what copying the source gets wrong (less
        # than on the drawing itself, test_baselines: the photo went 2x up and back down).
        assert np.abs(result - truth).mean() < 0.5 * np.abs(source - truth).mean()
        preview = _png(out / f"{pid}.preview.png")
        assert preview.shape == (256, 3 * 176, 3) and np.array_equal(preview[:, 352:], result)
    sheet = _png(tmp_path / "sheet.png")
    assert sheet.shape == (512, 3 * 176, 3) and np.array_equal(
        sheet[256:, 176:352], _png(out / f"{pids[0]}.png")
    )
    # Without --pose-frame the second target's frame comes from the image beside it (shifted.jpg, the
    # same 176x256): the same image.
    again = tmp_path / "again.png"
    argv = ["synthesize", "--method", "pose-warp", "--source", str(src), "--target-pose", str(targets[1]),
            "--out", str(again)]  # fmt: skip
    assert main(argv) == 0
    assert "image size from shifted.jpg" in capsys.readouterr().out
    assert again.read_bytes() == (out / f"{pids[1]}.png").read_bytes()


def test_copy_source_shows_the_framed_photo(photo: tuple[Path, Path], tmp_path: Path) -> None:
    src, pose = photo
    target = _targets(tmp_path)[0]
    out = tmp_path / "copy.png"
    assert main(["synthesize", "--method", "copy-source", "--source", str(src), "--source-pose", str(pose),
                 "--target-pose", str(target), "--pose-frame", "256x176", "--out", str(out)]) == 0  # fmt: skip
    person = draw_person(pose_variants()[0], COLOURS).astype(np.float32)
    # the crop is the person's columns exactly; resizing 2x down is the only change
    assert np.abs(_png(out) - person).mean() < 6.0
    again = main(["synthesize", "--method", "copy-source", "--source", str(src), "--target-pose", str(target),
                  "--pose-frame", "256x176", "--out", str(out)])  # fmt: skip
    assert again == 2  # an existing output is not replaced without --overwrite


@pytest.mark.parametrize("method", ["copy-source", "pose-warp", "cfld"])
def test_a_dataset_pair_gives_the_image_generate_writes(
    method: str, tiny_root: Path, cfld_micro_checkpoint: Path, tmp_path: Path
) -> None:
    """Same per-pair seeding, loading and pose maps as `pgpis generate`: byte-identical PNGs (at the
    same batch size: a batched matmul may round differently from a single one)."""
    extra = ["--checkpoint", str(cfld_micro_checkpoint)] if method == "cfld" else []
    assert main(["generate", "--method", method, "--dataset", str(tiny_root), "--out", str(tmp_path / "gen"),
                 "--limit", "2", "--batch-size", "1", "--no-progress", *extra]) == 0  # fmt: skip
    for src, tgt in DeepFashionDataset(tiny_root).pairs[:2]:
        out = tmp_path / f"{pair_id(src, tgt)}.png"
        assert main(["synthesize", "--method", method, "--dataset", str(tiny_root), "--source", src,
                     "--target-pose", tgt, "--out", str(out), "--no-progress", *extra]) == 0  # fmt: skip
        assert out.read_bytes() == (tmp_path / "gen" / out.name).read_bytes()


def test_cfld_on_a_photo_with_steps(
    photo: tuple[Path, Path], cfld_micro_checkpoint: Path, tmp_path: Path
) -> None:
    src, _ = photo
    target = _targets(tmp_path)[0]
    base = ["synthesize", "--method", "cfld", "--checkpoint", str(cfld_micro_checkpoint), "--source", str(src),
            "--target-pose", str(target), "--pose-frame", "256x176", "--no-progress"]  # fmt: skip
    assert main([*base, "--steps", "1", "--out", str(tmp_path / "a.png")]) == 0
    assert main([*base, "--steps", "2", "--out", str(tmp_path / "b.png")]) == 0
    assert main([*base, "--steps", "2", "--seed", "5", "--out", str(tmp_path / "c.png")]) == 0
    a, b, c = (_png(tmp_path / n) for n in ("a.png", "b.png", "c.png"))
    assert a.shape == (256, 176, 3) and not np.array_equal(a, b) and not np.array_equal(b, c)
    assert main([*base, "--steps", "2", "--out", str(tmp_path / "b2.png")]) == 0
    assert np.array_equal(_png(tmp_path / "b2.png"), b)  # seeded per pair: reproducible


def test_released_needs_dataset_pairs(
    photo: tuple[Path, Path], tiny_root: Path, tmp_path: Path, capsys
) -> None:
    src, _ = photo
    release = tmp_path / "release"
    release.mkdir()
    a, b = DeepFashionDataset(tiny_root).pairs[0]
    Image.fromarray(np.full((256, 176, 3), 77, np.uint8)).save(release / f"{pair_id(a, b)}.png")
    target = _targets(tmp_path)[0]
    code = main(["synthesize", "--method", "released", "--checkpoint", str(release), "--source", str(src),
                 "--target-pose", str(target), "--pose-frame", "256x176"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "released" in err and "--dataset" in err and "Traceback" not in err
    out = tmp_path / "r.png"
    assert main(["synthesize", "--method", "released", "--checkpoint", str(release), "--dataset", str(tiny_root),
                 "--source", a, "--target-pose", b, "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    assert (_png(out) == 77).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target-pose", "nowhere.json"], "nowhere.json: not a pose file"),
        (["--target-pose", "{t}", "--steps", "3"], "--steps: method 'copy-source' has no sampling steps"),
        (["--target-pose", "{t}", "{t2}", "--out", "x.png"], "2 target poses make 2 images; give a folder"),
        (["--target-pose", "{t}", "--person", "1"], "--person 1 asked for, the file has 1"),
        (["--target-pose", "{t}", "{t}"], "the same pair twice"),
    ],
)
def test_bad_input_names_the_problem(
    photo: tuple[Path, Path], tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    src, _ = photo
    t, t2 = _targets(tmp_path)
    argv = ["synthesize", "--method", "copy-source", "--source", str(src), "--pose-frame", "256x176"]
    argv += [e.format(t=t, t2=t2) for e in extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.png"))  # nothing half-written


@pytest.fixture(scope="module")
def cfld_micro_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from _cfld_micro import write_micro_checkpoint

    # DDPM: ancestral sampling draws noise every step, so the per-pair generators matter throughout.
    sampling = {"scheduler": "ddpm", "num_inference_steps": 3, "clip_sample": True}
    return write_micro_checkpoint(tmp_path_factory.mktemp("cfld") / "model", sampling)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    from _cfld_micro import torch_threads

    with torch_threads(1):  # tiny models: OpenMP threads on the shared CPU only slow them down
        yield
