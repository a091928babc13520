"""`pgpis evaluate --refstats-dir`: the pipeline's shared statistics folder, one file per reference key."""

from __future__ import annotations

from pathlib import Path

from bench.cli.main import main
from bench.metrics.protocols import get_protocol
from bench.refkeys import reference_key


def test_missing_shared_statistics_name_the_file_and_the_command(
    tiny_root: Path, tmp_path: Path, capsys
) -> None:
    (tmp_path / "refstats").mkdir()
    images = tmp_path / "images"
    images.mkdir()
    out = tmp_path / "m.json"
    code = main(["evaluate", "--protocol", "cfld-256", "--images", str(images), "--dataset", str(tiny_root),
                 "--refstats-dir", str(tmp_path / "refstats"), "--out", str(out), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    key = reference_key(get_protocol("cfld-256"), "incv3tv")
    assert code == 2 and f"{key}.npz" in err and "pgpis refstats --protocol cfld-256" in err
    assert not out.exists()
