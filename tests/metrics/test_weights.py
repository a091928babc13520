"""Weights: resolution from the torch cache, sha256 checks, clear errors, and download over HTTP."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.errors import MissingWeightError
from bench.metrics import weights


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server serving a temp folder; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # noqa: ANN002, ANN003
            super().__init__(*a, directory=str(folder), **k)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_missing_weight_names_file_url_and_destination() -> None:
    with pytest.raises(MissingWeightError) as err:
        weights.resolve("alexnet")
    msg = str(err.value)
    dest = weights.checkpoints_dir() / "alexnet-owt-7be5be79.pth"
    assert "alexnet-owt-7be5be79.pth" in msg and str(dest) in msg
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in msg and "fetch-weights" in msg


def test_hash_mismatch_is_refused_unless_allowed() -> None:
    dest = weights.checkpoints_dir() / weights.WEIGHTS["alexnet"].filename
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the real alexnet")
    with pytest.raises(MissingWeightError, match="does not start with 7be5be79"):
        weights.resolve("alexnet")
    w = weights.resolve("alexnet", allow_unverified=True)
    assert not w.verified and w.sha256 == hashlib.sha256(b"not the real alexnet").hexdigest()


def test_download_verifies_the_hash_prefix(http_dir: tuple[str, Path]) -> None:
    base, folder = http_dir
    payload = b"fake weight payload"
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    spec = weights.WeightSpec("fake", f"fake-{prefix}.pth", f"{base}/fake-{prefix}.pth", "tests")
    (folder / spec.filename).write_bytes(payload)
    path = weights.download(spec, progress=False)
    assert path == weights.checkpoints_dir() / spec.filename and path.read_bytes() == payload

    wrong = weights.WeightSpec("fake2", "fake2-00000000.pth", f"{base}/fake-{prefix}.pth", "tests")
    with pytest.raises(MissingWeightError, match="discarded"):
        weights.download(wrong, progress=False)
    assert not (weights.checkpoints_dir() / wrong.filename).exists()
    assert not [p for p in weights.checkpoints_dir().iterdir() if p.name.startswith(".")]  # no temp left


def test_cli_fetch_weights_rejects_a_wrong_file_and_reports_offline(
    http_dir: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, folder = http_dir
    (folder / "alexnet-owt-7be5be79.pth").write_bytes(b"an impostor")
    assert main(["fetch-weights", "alexnet", "--base-url", base]) == 2
    assert "discarded" in capsys.readouterr().err
    assert not (weights.checkpoints_dir() / "alexnet-owt-7be5be79.pth").exists()
    # unreachable URL: exit 2 with the destination named
    assert main(["fetch-weights", "vgg16", "--base-url", base + "/nothing-here"]) == 2
    assert str(weights.checkpoints_dir()) in capsys.readouterr().err
    assert main(["fetch-weights", "--list"]) == 0
    assert "missing" in capsys.readouterr().out
