"""OS errors reach the user as one message naming the path and the remedy, exit 2, never a traceback,
and leave no temporary and no half-written output: a full disk (a real EFBIG from `ulimit -f`, and
ENOSPC simulated), a read-only folder (EACCES simulated: the tests run as root, whom chmod cannot
stop), a broken pipe, a device node as output, text in the wrong encoding."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from _faults import inshop_tree, pgpis_command, run_pgpis, synth_args, temporaries

from bench import io as bench_io
from bench.cli.main import main

GENERATE = ["generate", "--method", "pose-warp", "--batch-size", "1", "--no-progress"]


def assert_clean_failure(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) <= 3, err  # one message (plus at most a logged warning)
    for needle in needles:
        assert needle in err, err


# --- disk full ------------------------------------------------------------------------------------


def test_generate_past_the_file_size_limit(tiny_synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = run_pgpis(*GENERATE, "--dataset", str(tiny_synth), "--out", str(out), limit_file_kib=4)
    assert_clean_failure(result.returncode, result.stderr, "file size limit", ".png")
    assert temporaries(out) == []
    # Whatever was written is whole: a rerun with room finishes it.
    from bench.generate import png_problem

    assert all(png_problem(p, (256, 176)) is None for p in out.glob("*.png"))
    assert main([*GENERATE, "--dataset", str(tiny_synth), "--out", str(out)]) == 0


def test_synth_past_the_file_size_limit(tmp_path: Path) -> None:
    result = run_pgpis(*synth_args(tmp_path / "ds"), limit_file_kib=1)
    assert_clean_failure(result.returncode, result.stderr, "file size limit")
    assert sorted(os.listdir(tmp_path)) == []  # neither the dataset nor its staging folder


def no_space_on(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write of file content under ``folder`` fails with ENOSPC, as on a full disk."""
    real_write_bytes = Path.write_bytes
    real_copyfile = shutil.copyfile

    def write_bytes(self: Path, data: bytes) -> int:
        if str(self).startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_bytes(self, data)

    def copyfile(src, dst, **kw):  # noqa: ANN001, ANN003, ANN202
        if str(dst).startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_copyfile(src, dst, **kw)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_prepare_on_a_full_disk(tiny_synth: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    images = tmp_path / "img_highres"
    splits = inshop_tree(tiny_synth, images)
    out = tmp_path / "out"
    no_space_on(out, monkeypatch)
    code = main(
        ["prepare", "--images", str(images), "--splits", str(splits), "--out", str(out), "--link", "copy"]
    )
    assert_clean_failure(code, capsys.readouterr().err, "disk is full", str(out))
    assert temporaries(out) == [] and not (out / "test_highres").exists()


# --- read-only folder -----------------------------------------------------------------------------


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """``read_only(folder)``: creating anything inside ``folder`` fails with EACCES, as for a folder
    without write permission (simulated: chmod does not stop root, whom these tests run as)."""
    folders: list[str] = []
    real_open, real_mkdir = os.open, os.mkdir

    def denied(path) -> bool:  # noqa: ANN001
        path = os.path.abspath(os.fspath(path))
        return any(path.startswith(f + os.sep) for f in folders)

    def guarded_open(path, flags, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR) and denied(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kw)

    def guarded_mkdir(path, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if denied(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_mkdir(path, *args, **kw)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(os.path.abspath(folder))
        return folder

    return make


def test_generate_into_a_read_only_folder_fails_before_the_work(
    tiny_synth, tmp_path, read_only, capsys, monkeypatch
):  # noqa: ANN001
    folder = read_only(tmp_path / "ro")
    from bench import registry

    loaded = []
    monkeypatch.setattr(
        registry, "load_method", lambda *a, **k: loaded.append(a) or pytest.fail("model loaded")
    )
    code = main([*GENERATE, "--dataset", str(tiny_synth), "--out", str(folder / "gen")])
    assert_clean_failure(code, capsys.readouterr().err, str(folder), "Permission denied")
    assert loaded == [] and os.listdir(folder) == []


@pytest.mark.parametrize("command", ["synth", "train", "fetch"])
def test_other_commands_into_a_read_only_folder(command, tiny_synth, tmp_path, read_only, capsys):  # noqa: ANN001
    folder = read_only(tmp_path / "ro")
    out = folder / "out"
    args = {
        "synth": synth_args(out),
        "train": ["train", "--method", "cfld", "--config", "methods/cfld/configs/train_tiny.yaml",
                  "--dataset", str(tiny_synth), "--out", str(out)],
        "fetch": ["fetch", "deepfashion", "--out", str(out), "--base-url", "http://127.0.0.1:9"],
    }[command]  # fmt: skip
    code = main(args)
    assert_clean_failure(code, capsys.readouterr().err, str(folder), "Permission denied")
    assert os.listdir(folder) == []


# --- broken pipe ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["methods", "synth", "evaluate"])
def test_reader_closing_the_pipe_is_no_error(command, tiny_synth, tmp_path) -> None:  # noqa: ANN001
    """The table row `pgpis evaluate ... | head -1` (and `pgpis methods | head -1`): the reader goes away
    before the output is written. The handling is in bench/cli/main.py, for every command."""
    gen = tmp_path / "gen"
    if command == "evaluate":  # offline: FID/LPIPS are unavailable, SSIM and PSNR are scored and printed
        assert (
            main(["generate", "--method", "copy-source", "--dataset", str(tiny_synth), "--out", str(gen)])
            == 0
        )
    args = {
        "methods": ["methods"],
        "synth": synth_args(tmp_path / "ds"),
        "evaluate": ["evaluate", "--protocol", "cfld-256", "--images", str(gen), "--dataset", str(tiny_synth),
                     "--out", str(tmp_path / "metrics.json")],
    }  # fmt: skip
    proc = subprocess.Popen(pgpis_command(*args[command]), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # as `head -1` does once it has its line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait() == 2, err
    assert "broken pipe" in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err


# --- outputs that are not regular files -----------------------------------------------------------


def special_file(tmp_path: Path) -> Path:
    """A character device like /dev/null when allowed (root), else a FIFO: neither may be replaced."""
    path = tmp_path / "special"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        os.mkfifo(path)
    return path


def test_a_device_output_is_refused_and_kept(tmp_path: Path) -> None:
    dev = special_file(tmp_path)
    kind = stat.S_IFMT(os.stat(dev).st_mode)
    with pytest.raises(bench_io.ConfigError, match="not a regular file"):
        bench_io.write_text_atomic(dev, "x")
    with pytest.raises(bench_io.ConfigError, match="not a regular file"):
        bench_io.check_writable([dev])
    with pytest.raises(bench_io.ConfigError, match="not a regular file"):
        with bench_io.commit_outputs([tmp_path / "ok.txt", dev]) as temps:
            temps[0].write_text("a")
    assert stat.S_IFMT(os.stat(dev).st_mode) == kind
    assert sorted(os.listdir(tmp_path)) == ["special"]


def test_report_md_on_a_device_is_refused(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """The table row: `--md /dev/null` as root replaced the device node by a regular file."""
    import json

    dev = special_file(tmp_path)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    record = {  # a complete metrics file as `pgpis evaluate` writes it
        "protocol": "pgpis-v1",
        "protocol_settings": {"size": [256, 176]},
        "method": {"name": "m", "description": "d"},
        "images": "outputs/m",
        "num_images": 6,
        "num_expected": 6,
        "missing": [],
        "allow_missing": False,
        "dropped": 0,
        "metrics": {"psnr": 11.0},
        "ci95": {},
        "unavailable": {},
        "weights": {},
        "versions": {},
        "git": None,
    }
    (metrics / "m.json").write_text(json.dumps(record))
    kind = stat.S_IFMT(os.stat(dev).st_mode)
    code = main(["report", "--metrics", str(metrics), "--out", str(dev)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(dev) in err, err
    assert stat.S_IFMT(os.stat(dev).st_mode) == kind


# --- encodings ------------------------------------------------------------------------------------


def test_latin1_config_names_file_and_line(tiny_synth: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    config = tmp_path / "c.yaml"
    config.write_bytes("# ok\n# caf\xe9\n".encode("latin-1"))
    code = main(
        [*GENERATE, "--config", str(config), "--dataset", str(tiny_synth), "--out", str(tmp_path / "g")]
    )
    assert_clean_failure(code, capsys.readouterr().err, f"{config}: line 2", "UTF-8")


def test_terminal_that_cannot_show_a_path(tmp_path: Path) -> None:
    env_run = subprocess.run(
        pgpis_command(*synth_args(tmp_path / "données")),
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii:strict"},
    )
    err = env_run.stderr.decode("ascii", "replace")
    assert_clean_failure(env_run.returncode, err, "PYTHONIOENCODING")
