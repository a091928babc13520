"""The remaining rows of issue 17's table, each through the real CLI: split files validated by every
command that reads a dataset, `fetch` over hand-placed files, `prepare` with bad split CSVs, a pickle
payload in the SD VAE folder."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from _faults import inshop_tree

from bench.cli.main import main

ANN = "fasion-resize-annotation-test.csv"


def unannotated_copy(tiny_synth: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the dataset whose first test image (used by pairs) has no annotation row."""
    root = tmp_path / "ds"
    shutil.copytree(tiny_synth, root)
    lines = (root / ANN).read_text().splitlines()
    name = lines.pop(1).split(":")[0]
    (root / ANN).write_text("\n".join(lines) + "\n")
    return root, name


def generated_folder(tiny_synth: Path, tmp_path: Path) -> Path:
    out = tmp_path / "gen"
    assert (
        main(
            [
                "generate",
                "--method",
                "copy-source",
                "--dataset",
                str(tiny_synth),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out


@pytest.mark.parametrize("command", ["generate", "evaluate", "figures", "user-study", "prepare"])
def test_every_command_refuses_a_split_generate_refuses(command, tiny_synth, tmp_path, capsys) -> None:  # noqa: ANN001
    """The table row: `evaluate` scored a split whose pair images are not all annotated, which `generate`
    refuses. Every command that reads a dataset applies the same check and names the file and image."""
    gen = generated_folder(tiny_synth, tmp_path)
    root, name = unannotated_copy(tiny_synth, tmp_path)
    args = {
        "generate": ["generate", "--method", "copy-source", "--dataset", str(root), "--out", str(tmp_path / "g2")],
        "evaluate": ["evaluate", "--protocol", "cfld-256", "--images", str(gen), "--dataset", str(root),
                     "--out", str(tmp_path / "m.json")],
        "figures": ["figures", "--dataset", str(root), "--generated", str(gen), "--out", str(tmp_path / "fig")],
        "user-study": ["user-study", "make", "--dataset", str(root), "--generated", str(gen),
                       "--out", str(tmp_path / "study")],
        "prepare": ["prepare", "--images", str(tmp_path / "nowhere"), "--splits", str(root),
                    "--out", str(tmp_path / "prepared")],
    }[command]  # fmt: skip
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and ANN in err and name in err, err
    for out in ("g2", "m.json", "fig", "study", "prepared"):
        assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())


def test_prepare_refuses_bad_split_csvs_before_placing_images(
    tiny_synth: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """The table row: `prepare` copied bad split CSVs without checking (exit 0)."""
    images = tmp_path / "img_highres"
    splits = inshop_tree(tiny_synth, images)
    pairs = splits / "fasion-resize-pairs-test.csv"
    pairs.write_text(pairs.read_text() + "fashionWOMENDressesid0000000101_1front.jpg,also_unknown.jpg\n")
    out = tmp_path / "out"
    code = main(["prepare", "--images", str(images), "--splits", str(splits), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert (
        "fasion-resize-pairs-test.csv" in err and "not in list file" in err and "also_unknown.jpg" in err
    ), err
    assert not (out / "test_highres").exists() and not (out / "fasion-resize-pairs-test.csv").exists()
    # A malformed row is refused with its line.
    pairs.write_text("from,to\na.jpg\n")
    assert main(["prepare", "--images", str(images), "--splits", str(splits), "--out", str(out)]) == 2
    assert f"{pairs}: line 2" in capsys.readouterr().err


def test_fetch_over_hand_placed_files_says_they_were_not_downloaded(
    splits_dir: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """The table row: "downloaded split files failed verification" though nothing was downloaded."""
    out = tmp_path / "deepfashion"
    out.mkdir()
    for name in ("train.lst", "test.lst", "fasion-resize-pairs-test.csv", ANN):
        shutil.copyfile(splits_dir / name, out / name)
    names = (splits_dir / "train.lst").read_text().split()[:3]
    (out / "fasion-resize-pairs-train.csv").write_text("from,to\n" + f"{names[0]},{names[1]}\n")
    row = ": [" + ", ".join(["10"] * 18) + "]: [" + ", ".join(["20"] * 18) + "]"
    (out / "fasion-resize-annotation-train.csv").write_text(
        f"name:keypoints_y:keypoints_x\n{names[0]}{row}\n"
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = main(["fetch", "deepfashion", "--out", str(out), "--base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert "downloaded split files" not in err and "nothing was downloaded" in err, err
    assert "placed by hand" in err and names[1] in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing changed, no record written


def test_pickle_payload_in_the_sd_vae_folder_is_refused_cleanly(
    tiny_synth: Path, tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """The table row: refused, but exit 1 with a 66-line traceback."""
    import torch
    import yaml
    from _cfld_micro import MICRO_TRAIN

    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # noqa: ANN204
            return (open, (str(marker), "w"))

    vae = tmp_path / "sd" / "vae"
    vae.mkdir(parents=True)
    (vae / "config.json").write_text(json.dumps({"_class_name": "AutoencoderKL", "block_out_channels": [8],
                                                  "down_block_types": ["DownEncoderBlock2D"],
                                                  "up_block_types": ["UpDecoderBlock2D"], "latent_channels": 4,
                                                  "norm_num_groups": 4, "sample_size": 32}))  # fmt: skip
    torch.save(
        {"encoder.conv_in.weight": Payload()},
        vae / "diffusion_pytorch_model.bin",
        pickle_protocol=pickle.HIGHEST_PROTOCOL,
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump({**MICRO_TRAIN, "latent": {"kind": "sd_vae", "vae": str(tmp_path / "sd")}})
    )
    capsys.readouterr()
    code = main(["train", "--method", "cfld", "--config", str(config), "--dataset", str(tiny_synth),
                 "--out", str(tmp_path / "run"), "--max-steps", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3, err
    assert "diffusion_pytorch_model.bin" in err and "weights_only" in err, err
    assert not marker.exists(), "the pickled code ran"
