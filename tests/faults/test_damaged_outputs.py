"""Generation trusts only complete images, and temporaries never outlive a run."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _faults import REPO, TEMP_PREFIX, dead_pid, digest_tree, inshop_tree, run_pgpis, synth_args, temporaries
from PIL import Image

from bench.cli.main import main

GENERATE = ["generate", "--method", "pose-warp", "--no-progress"]


def test_one_prefix_for_every_temporary() -> None:
    from bench import io

    assert io.TEMP_PREFIX == TEMP_PREFIX and io.temp_owner().startswith(TEMP_PREFIX)


def test_damaged_pngs_are_generated_again_and_counted(tiny_synth: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The table row: a truncated or 0-byte PNG was counted as done ("N already present, 0 generated")."""
    args = [*GENERATE, "--dataset", str(tiny_synth)]
    assert main([*args, "--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "gen"
    shutil.copytree(tmp_path / "reference", out)
    pngs = sorted(out.glob("*.png"))
    pngs[0].write_bytes(b"")  # emptied
    pngs[1].write_bytes(pngs[1].read_bytes()[:1000])  # truncated by a copy
    data = bytearray(pngs[2].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the pixel data
    pngs[2].write_bytes(bytes(data))
    buf = io.BytesIO()
    Image.fromarray(np.zeros((128, 88, 3), np.uint8)).save(buf, format="PNG")
    pngs[3].write_bytes(buf.getvalue())  # a whole PNG of the wrong size
    from bench.generate import png_problem

    assert all(png_problem(p, (256, 176)) for p in pngs[:4])
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 existing image(s) were damaged" in printed, printed
    assert f"{len(pngs)} pairs, {len(pngs) - 4} already present, 4 generated" in printed, printed
    assert digest_tree(out) == digest_tree(tmp_path / "reference")


def test_png_check_is_cheap_compared_with_a_decode(tiny_synth: Path, tmp_path: Path) -> None:
    """The resume check reads each file once and checks CRCs without inflating pixels: measured against
    PIL's full decode on the same files (ratio printed; asserted only loosely, the machine is shared)."""
    from bench.generate import png_problem

    out = tmp_path / "gen"
    assert main([*GENERATE, "--dataset", str(tiny_synth), "--out", str(out)]) == 0
    pngs = sorted(out.glob("*.png")) * 20

    def timed(fn) -> float:  # noqa: ANN001
        start = time.perf_counter()
        for p in pngs:
            fn(p)
        return time.perf_counter() - start

    def decode(p: Path) -> None:
        with Image.open(p) as img:
            img.load()

    check, full = (
        min(timed(lambda p: png_problem(p, (256, 176))) for _ in range(3)),
        min(timed(decode) for _ in range(3)),
    )
    print(f"PNG resume check: {check / len(pngs) * 1e6:.0f} us/image, full decode {full / len(pngs) * 1e6:.0f} us/image, "
          f"ratio {full / check:.1f}x over {len(pngs)} reads of 256x176 PNGs")  # fmt: skip
    assert check < full


def plant_stale(folder: Path, name: str, directory: bool = False) -> Path:
    """A temporary of ours left by a killed run (its pid no longer runs)."""
    from bench.io import temp_owner

    path = folder / f"{temp_owner(dead_pid())}-{name}.x1y2z3"
    if directory:
        (path / "sub").mkdir(parents=True)
        (path / "sub" / "big.bin").write_bytes(os.urandom(1000))
    else:
        path.write_bytes(b"partial")
    return path


def test_stale_temporaries_are_removed_by_the_next_run_only_ours(tiny_synth: Path, tmp_path: Path) -> None:
    """The table row: temporaries of a killed cache write, synth or prepare were never cleaned."""
    from bench.io import temp_owner

    # generate: a killed PNG write
    out = tmp_path / "gen"
    out.mkdir()
    stale = plant_stale(out, "x_2_y.png")
    alive = out / f"{temp_owner(os.getppid())}-x_2_y.png.a1b2c3.png"  # a live process's: kept
    alive.write_bytes(b"in progress")
    foreign = out / ".x_2_y.png.swp"  # not our prefix (an editor's swap file): never touched
    foreign.write_bytes(b"someone else's")
    other_host = out / f"{TEMP_PREFIX}000000-{dead_pid()}-x_2_y.png.a1b2c3.png"  # a rank on another machine
    other_host.write_bytes(b"in progress elsewhere")
    assert main([*GENERATE, "--dataset", str(tiny_synth), "--out", str(out)]) == 0
    assert not stale.exists() and alive.exists() and foreign.exists() and other_host.exists()
    for kept in (alive, foreign, other_host):
        kept.unlink()
    # synth: a killed build leaves its staging folder beside --out
    parent = tmp_path / "data"
    parent.mkdir()
    stage = plant_stale(parent, "ds", directory=True)
    assert main(synth_args(parent / "ds")) == 0
    assert not stage.exists() and temporaries(parent) == []
    # a metrics cache write (refstats' .npz partial goes through the same bench.io.atomic_path)
    from bench.io import write_bytes_atomic

    cache = tmp_path / "cache"
    cache.mkdir()
    partial = plant_stale(cache, "stats.npz")
    write_bytes_atomic(cache / "other.npz", b"x")
    assert not partial.exists() and temporaries(cache) == []


def test_a_folder_moved_aside_by_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    """Killed between moving the old folder aside and renaming the new one in: the user's folder is
    restored by the next run, not deleted as a temporary."""
    from bench.io import atomic_dir, temp_owner

    moved = tmp_path / f"{temp_owner(dead_pid())}.old-ds"
    moved.mkdir()
    (moved / "DATASET.json").write_text("{}")
    with atomic_dir(tmp_path / "other") as stage:
        (stage / "f").write_text("x")
    assert (tmp_path / "ds" / "DATASET.json").read_text() == "{}"
    assert temporaries(tmp_path) == []


def test_prepare_stale_staging_folder_removed(tiny_synth: Path, tmp_path: Path) -> None:
    images = tmp_path / "img_highres"
    splits = inshop_tree(tiny_synth, images)
    out = tmp_path / "out"
    out.mkdir()
    stage = plant_stale(out, "test_highres", directory=True)
    assert main(["prepare", "--images", str(images), "--splits", str(splits), "--out", str(out)]) == 0
    assert not stage.exists() and temporaries(out) == []


def test_temporaries_do_not_show_in_git_status_after_a_failure(tmp_path: Path) -> None:
    """Whatever fails, no temporary is left in a repository's working tree (the row's "untracked files")."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = run_pgpis(*synth_args(tmp_path / "ds"), limit_file_kib=1)
    assert result.returncode == 2, result.stderr
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=tmp_path, capture_output=True, text=True
    )
    assert status.stdout == "", status.stdout
    assert sys.executable and REPO.exists()
