"""`pgpis fetch deepfashion` against a loopback HTTP server started by the test."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench.data.fetch as fetch_mod
from bench.cli.main import main
from bench.data.deepfashion import read_list, unflatten_name
from bench.data.fetch import RECORD, fetch_deepfashion, load_catalog
from bench.errors import DataError

FILES = [
    "train.lst",
    "test.lst",
    "fasion-resize-pairs-train.csv",
    "fasion-resize-pairs-test.csv",
    "fasion-resize-annotation-train.csv",
    "fasion-resize-annotation-test.csv",
]
ROW = ": [" + ", ".join(["10"] * 18) + "]: [" + ", ".join(["20"] * 18) + "]"


class Server:
    """A static file server on 127.0.0.1 (random port) that logs every requested path."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=root)
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/splits"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


def write_train_csvs(folder: Path, names: list[str]) -> None:
    pairs = [f"{a},{b}" for a in names for b in names if a != b]
    (folder / "fasion-resize-pairs-train.csv").write_text("from,to\n" + "\n".join(pairs) + "\n")
    (folder / "fasion-resize-annotation-train.csv").write_text(
        "name:keypoints_y:keypoints_x\n" + "".join(f"{n}{ROW}\n" for n in names)
    )


@pytest.fixture
def served(tmp_path, splits_dir):
    """The real lists and test CSVs, plus small train CSVs (the real ones are not in ../shared)."""
    root = tmp_path / "www" / "splits"
    root.mkdir(parents=True)
    for name in FILES:
        if "train.csv" not in name:
            (root / name).write_bytes((splits_dir / name).read_bytes())
    write_train_csvs(root, read_list(splits_dir / "train.lst")[:3])
    server = Server(root.parent)
    yield root, server
    server.stop()


def test_fetch_verify_record_then_offline_noop(served, tmp_path, capsys):
    root, server = served
    out = tmp_path / "deepfashion"
    assert main(["fetch", "deepfashion", "--out", str(out), "--base-url", server.url]) == 0
    text = capsys.readouterr().out
    assert "downloaded and verified" in text and "pgpis prepare --images" in text
    assert sorted(server.requests) == sorted(f"/splits/{n}" for n in FILES)
    record = json.loads((out / RECORD).read_text())["files"]
    for name in FILES:
        assert (out / name).read_bytes() == (root / name).read_bytes()
        assert record[name]["sha256"] == hashlib.sha256((root / name).read_bytes()).hexdigest()
    assert (
        record["test.lst"]["sha256"].startswith("336650cb")
        and record["test.lst"]["check"] == "published sha256"
    )
    assert record["train.lst"]["sha256"].startswith("50f41143")
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, RECORD])  # no temp folders left
    # Offline: the server is gone, the files are present and verified: nothing happens.
    server.requests.clear()
    server.stop()
    assert main(["fetch", "deepfashion", "--out", str(out), "--base-url", server.url]) == 0
    assert "present and verified" in capsys.readouterr().out
    assert server.requests == []
    # A tampered file is refused, not silently re-recorded.
    ann = out / "fasion-resize-annotation-train.csv"
    ann.write_text(ann.read_text().replace("10", "11", 1))
    assert main(["fetch", "deepfashion", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(ann) in err and "recorded in" in err and "Delete it" in err


def test_corrupted_list_is_refused_and_nothing_written(served, tmp_path, capsys):
    root, server = served
    data = bytearray((root / "train.lst").read_bytes())
    data[100] ^= 1
    (root / "train.lst").write_bytes(bytes(data))
    out = tmp_path / "deepfashion"
    (out).mkdir()
    (out / "keep.txt").write_text("earlier output")
    assert main(["fetch", "deepfashion", "--out", str(out), "--base-url", server.url]) == 2
    err = capsys.readouterr().err
    assert "train.lst: sha256" in err and "expected 50f41143" in err and "nothing was written" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("fasion-resize-annotation-test.csv", "<html>Quota exceeded</html>\n", "not a valid split file"),
        (
            "fasion-resize-pairs-test.csv",
            "from,to\nfashionMENnobody.jpg,fashionMENnobody2.jpg\n",
            "not in annotation",
        ),
    ],
)
def test_bad_csv_downloads_are_refused(served, tmp_path, name, content, problem):
    root, server = served
    (root / name).write_text(content)
    out = tmp_path / "deepfashion"
    with pytest.raises(DataError, match=problem) as err:
        fetch_deepfashion(out, base_url=server.url)
    assert name in str(err.value)
    assert list(out.iterdir()) == []


def test_network_error_says_what_to_do(tmp_path):
    def offline(url, dest):
        raise OSError("network unreachable")

    with pytest.raises(DataError, match="could not download .*by hand from https://drive.google.com"):
        fetch_deepfashion(tmp_path / "out", base_url="http://127.0.0.1:9", download=offline)


def test_drive_folder_route_and_injected_downloader(served, tmp_path):
    """Without per-file URLs the Drive folder is fetched whole (gdown in real use, a stub here)."""
    root, _server = served
    seen = []

    def folder_download(url, dest):
        seen.append(url)
        (dest / "DeepFashion").mkdir(parents=True)
        for name in FILES:
            (dest / "DeepFashion" / name).write_bytes((root / name).read_bytes())

    out = tmp_path / "deepfashion"
    report = fetch_deepfashion(out, folder_download=folder_download)
    assert seen == ["https://drive.google.com/drive/folders/1qZDod3QDD7PaBxnNyHCuLBR7ftTSkSE1"]
    assert sorted(report.downloaded) == sorted(FILES)
    # Per-file URLs in the catalog go through the injected download(url, dest).
    catalog = load_catalog()
    for name in FILES:
        catalog["files"][name]["url"] = f"mirror://{name}"
    calls = []

    def download(url, dest):
        calls.append(url)
        dest.write_bytes((root / url.removeprefix("mirror://")).read_bytes())

    report = fetch_deepfashion(tmp_path / "other", download=download, catalog=catalog)
    assert sorted(calls) == sorted(f"mirror://{n}" for n in FILES)


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(
        buf, "JPEG"
    )
    return buf.getvalue()


def test_fetch_with_images_runs_prepare(tmp_path, monkeypatch, capsys):
    """A tiny split with its own list hashes (patched catalog), then --images builds the image folders."""
    names = {"train": ["fashionWOMENDressesid9100000101_1front.jpg", "fashionWOMENDressesid9100000101_2side.jpg"],
             "test": ["fashionMENDenimid9200000101_1front.jpg", "fashionMENDenimid9200000101_2back.jpg"]}  # fmt: skip
    www = tmp_path / "www" / "splits"
    www.mkdir(parents=True)
    for split, group in names.items():
        (www / f"{split}.lst").write_text("\n".join(group) + "\n")
        (www / f"fasion-resize-pairs-{split}.csv").write_text(f"from,to\n{group[0]},{group[1]}\n")
        (www / f"fasion-resize-annotation-{split}.csv").write_text(
            "name:keypoints_y:keypoints_x\n" + "".join(f"{n}{ROW}\n" for n in group)
        )
    catalog = load_catalog()
    for split in names:
        catalog["files"][f"{split}.lst"]["sha256"] = hashlib.sha256(
            (www / f"{split}.lst").read_bytes()
        ).hexdigest()
    monkeypatch.setattr(fetch_mod, "load_catalog", lambda dataset="deepfashion": catalog)
    images = tmp_path / "img_highres"
    for i, name in enumerate(names["train"] + names["test"]):
        path = images / unflatten_name(name).split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(i))
    server = Server(www.parent)
    try:
        out = tmp_path / "root"
        args = ["fetch", "deepfashion", "--out", str(out), "--base-url", server.url, "--images", str(images)]
        assert main(args) == 0
        assert "prepared train 2, test 2 images" in capsys.readouterr().out
        assert sorted(p.name for p in (out / "test_highres").iterdir()) == sorted(names["test"])
        assert main(args) == 0
        text = capsys.readouterr().out
        assert "nothing downloaded" in text and "images already prepared" in text
    finally:
        server.stop()
