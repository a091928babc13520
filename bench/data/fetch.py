"""Get the public DeepFashion split files, verify them, and record their sha256.

Where the files live and the hashes we know are in ``bench/data/splits.json`` (the only place
with URLs). The two image lists have known hashes (``deepfashion.md`` §9) and a mismatch is
refused; the four CSVs have no published hash, so theirs is recorded on first fetch into
``<root>/SPLITS.sha256.json`` and checked on every later run. Every download goes to a temporary
folder and is parsed and cross-checked before anything is moved into ``<root>``.

The downloader is injectable (``download(url, dest)``), and ``base_url`` replaces Google Drive
with any HTTP mirror; the tests use both with a loopback server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.data import deepfashion as df
from bench.errors import DataError
from bench.io import check_writable, commit_outputs, staging_dir

log = logging.getLogger(__name__)

CATALOG = Path(__file__).with_name("splits.json")
RECORD = "SPLITS.sha256.json"
Downloader = Callable[[str, Path], None]
FolderDownloader = Callable[[str, Path], None]


@dataclass
class FetchReport:
    downloaded: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)
    nothing_to_do: bool = False


def load_catalog(dataset: str = "deepfashion") -> dict[str, Any]:
    return json.loads(CATALOG.read_text())[dataset]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def http_download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest`` (the caller's temporary path)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
        shutil.copyfileobj(response, f, 1 << 20)


def default_download(url: str, dest: Path) -> None:
    if "drive.google.com" in url or "drive.usercontent.google.com" in url:
        import gdown

        if gdown.download(url=url, output=str(dest), quiet=False) is None:
            raise OSError(f"gdown could not download {url}")
    else:
        http_download(url, dest)


def gdown_folder(url: str, dest: Path) -> None:
    import gdown

    if not gdown.download_folder(url=url, output=str(dest), quiet=False):
        raise OSError(f"gdown could not list or download the Drive folder {url}")


def _manual_hint(catalog: dict[str, Any], out: Path) -> str:
    return (
        f"download the files by hand from {catalog['drive_folder']} into {out} and rerun "
        "(fetch then only verifies them), or pass --base-url of a mirror"
    )


def _check_format(path: Path, name: str) -> None:
    """Parse a split file; a download that is an HTML error page or is cut off fails here."""
    if name.endswith(".lst"):
        df.read_list(path)
    elif name.startswith("fasion-resize-pairs-"):
        df.read_pairs(path)
    else:
        df.read_annotations(path)


def _check_consistency(paths: dict[str, Path]) -> list[str]:
    """Every pair image is annotated and listed (the structure of the real split, deepfashion.md §5)."""
    problems = []
    for split in df.SPLITS:
        problems += df.split_file_problems(
            paths[f"fasion-resize-pairs-{split}.csv"],
            paths[f"fasion-resize-annotation-{split}.csv"],
            paths[f"{split}.lst"],
        )
    return problems


def _load_record(out: Path) -> dict[str, Any]:
    path = out / RECORD
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError) as err:
        raise DataError(
            f"{path}: unreadable ({err}); delete it and rerun to re-verify the split files"
        ) from None


def fetch_deepfashion(
    out: str | os.PathLike,
    base_url: str | None = None,
    download: Downloader | None = None,
    folder_download: FolderDownloader | None = None,
    catalog: dict[str, Any] | None = None,
) -> FetchReport:
    """Make ``out`` hold the six verified split files; download only what is missing."""
    catalog = catalog or load_catalog()
    download = download or default_download
    folder_download = folder_download or gdown_folder
    out = Path(out)
    check_writable([out / RECORD])
    out.mkdir(parents=True, exist_ok=True)
    record = _load_record(out)
    files: dict[str, dict[str, Any]] = catalog["files"]
    report = FetchReport()
    hashes: dict[str, str] = {}
    for name, meta in files.items():
        path = out / name
        if not path.exists():
            continue
        digest = sha256_file(path)
        expected = meta.get("sha256") or record.get(name, {}).get("sha256")
        if expected and digest != expected:
            source = "the published hash" if meta.get("sha256") else f"the hash recorded in {out / RECORD}"
            raise DataError(
                f"{path}: sha256 {digest} differs from {source} ({expected}); this is not the standard split "
                "file. Delete it and rerun to download it again"
            )
        hashes[name] = digest
        report.verified.append(name)
    todo = [name for name in files if name not in hashes]
    if not todo and set(record) >= set(files):
        report.nothing_to_do = True
        return report

    stage = staging_dir(out / "downloads")
    present = [name for name in files if name in hashes and name not in record]  # placed by hand, unchecked
    try:
        staged = _download_all(todo, stage, catalog, out, base_url, download, folder_download)
        problems = []
        for name in present:
            try:
                _check_format(out / name, name)
            except DataError as err:
                problems.append(f"{name}: not a valid split file ({err})")
        for name, path in staged.items():
            digest = sha256_file(path)
            known = files[name].get("sha256")
            if known and digest != known:
                problems.append(f"{name}: sha256 {digest}, expected {known}")
                continue
            try:
                _check_format(path, name)
            except DataError as err:
                problems.append(f"{name}: not a valid split file ({str(err).replace(str(path), name)})")
                continue
            hashes[name] = digest
        if not problems:
            try:
                problems = _check_consistency({name: staged.get(name, out / name) for name in files})
            except DataError as err:
                problems = [str(err)]
        # A downloaded file is named as such, not by its temporary folder (deleted when this fails).
        problems = [p.replace(f"{stage}{os.sep}", "(downloaded) ") for p in problems]
        if problems:
            raise DataError(_verification_failure(out, list(staged), present, problems, catalog))
        record_json = {
            "dataset": "deepfashion",
            "source": base_url or catalog["drive_folder"],
            "files": {
                name: {
                    "sha256": hashes[name],
                    "bytes": (staged.get(name) or out / name).stat().st_size,
                    "check": "published sha256" if files[name].get("sha256") else "recorded at first fetch",
                }
                for name in files
            },
        }
        # The new files and the record that vouches for them are committed as one set.
        names = list(staged)
        with commit_outputs([*(out / n for n in names), out / RECORD]) as temps:
            for name, tmp in zip(names, temps):
                os.replace(staged[name], tmp)
            temps[-1].write_text(json.dumps(record_json, indent=2) + "\n")
        report.downloaded.extend(names)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return report


def _verification_failure(
    out: Path, downloaded: list[str], present: list[str], problems: list[str], catalog: dict[str, Any]
) -> str:
    """Say which files failed: the ones just downloaded, or the ones already in ``out`` (placed by hand)."""
    where = []
    if downloaded:
        where.append(f"downloaded now: {', '.join(downloaded)}")
    if present:
        where.append(f"already in {out} (placed by hand, not downloaded): {', '.join(present)}")
    if downloaded:
        head = f"the split files failed verification ({'; '.join(where)}); nothing was written to {out}"
        remedy = (
            f"The source may have changed or the download was damaged; rerun, or {_manual_hint(catalog, out)}"
        )
    else:
        head = f"the split files in {out} fail verification (nothing was downloaded; {'; '.join(where)})"
        remedy = (
            "Replace the files named above with the standard ones (or delete them and rerun to download them), "
            f"e.g. from {catalog['drive_folder']}"
        )
    return f"{head}:\n- " + "\n- ".join(problems) + f"\n{remedy}"


def _download_all(
    names: list[str],
    stage: Path,
    catalog: dict[str, Any],
    out: Path,
    base_url: str | None,
    download: Downloader,
    folder_download: FolderDownloader,
) -> dict[str, Path]:
    staged: dict[str, Path] = {}
    files = catalog["files"]
    per_file = {n: (f"{base_url.rstrip('/')}/{n}" if base_url else files[n].get("url")) for n in names}
    for name, url in per_file.items():
        if url is None:
            continue
        log.info("downloading %s from %s", name, url)
        try:
            download(url, stage / name)
        except (OSError, urllib.error.URLError, ValueError) as err:
            raise DataError(
                f"could not download {name} from {url} ({err}); {_manual_hint(catalog, out)}"
            ) from None
        staged[name] = stage / name
    rest = [n for n, url in per_file.items() if url is None]
    if rest:  # no per-file URL known: fetch the whole Drive folder and pick the files from it
        folder = stage / "folder"
        log.info("downloading the Drive folder %s", catalog["drive_folder"])
        try:
            folder_download(catalog["drive_folder"], folder)
        except Exception as err:  # noqa: BLE001 - gdown raises its own types on quota/permission pages
            raise DataError(
                f"could not download the split folder {catalog['drive_folder']} ({err}); {_manual_hint(catalog, out)}"
            ) from None
        found = {p.name: p for p in folder.rglob("*") if p.is_file()}
        absent = [n for n in rest if n not in found]
        if absent:
            raise DataError(
                f"the Drive folder {catalog['drive_folder']} lacks {', '.join(absent)}; {_manual_hint(catalog, out)}"
            )
        for name in rest:
            os.replace(found[name], stage / name)
            staged[name] = stage / name
    return staged
