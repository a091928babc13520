"""Build ``train_highres/`` and ``test_highres/`` from DeepFashion's In-shop ``img_highres`` (folder or zip).

Same result as CFLD's ``generate_fashion_datasets.py`` (every image whose flattened path is in
``train.lst``/``test.lst`` is copied under its flat name into the split's folder), with what that
script lacks: every listed image must be found and readable, all problems are reported in one
error, and nothing is half-written (each split folder is built aside and renamed into place).
"""

from __future__ import annotations

import errno
import os
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.data import deepfashion as df
from bench.errors import DataError
from bench.io import atomic_path, check_writable, commit_outputs, staging_dir, swap_in_dir

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # In-shop is all .jpg; CFLD's walker accepts a few more
SPLIT_FILES = (
    "train.lst",
    "test.lst",
    "fasion-resize-pairs-train.csv",
    "fasion-resize-pairs-test.csv",
    "fasion-resize-annotation-train.csv",
    "fasion-resize-annotation-test.csv",
)
_GET_IMAGES = (
    "DeepFashion In-shop images come from the authors only: download Img/img_highres.zip from the "
    "DeepFashion In-shop Google Drive and request its password (see datasets/README.md)"
)


@dataclass
class PrepareReport:
    copied: dict[str, int]
    skipped: bool
    method: str


class ImageSource:
    """A flat-name -> file index over an ``img_highres`` folder or zip."""

    def __init__(self, path: str | os.PathLike, password: str | None = None) -> None:
        self.path = Path(path)
        self.password = password.encode() if password else None
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise DataError(f"{self.path}: image folder or zip not found; {_GET_IMAGES}")
        if self.path.is_dir():
            self.index = self._index_folder()
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self.index = self._index_zip()
        else:
            raise DataError(
                f"{self.path}: neither a folder nor a zip archive; pass the img_highres folder or zip"
            )

    def _add(self, index: dict[str, str], clashes: list[str], path: str) -> None:
        flat = _flat_or_none(path)
        if flat is None:
            return
        if flat in index:  # e.g. both img/ (low-res) and img_highres/ under the given folder
            clashes.append(f"{index[flat]} and {path} -> {flat}")
        index[flat] = path

    def _check_clashes(self, clashes: list[str]) -> None:
        if clashes:
            raise DataError(
                f"{self.path}: {len(clashes)} image name(s) occur twice, so the source is ambiguous "
                "(pass the img_highres folder itself, not a folder that also holds img/):\n  "
                + "\n  ".join(clashes[:20])
            )

    def _index_folder(self) -> dict[str, str]:
        index: dict[str, str] = {}
        clashes: list[str] = []
        for dirpath, dirs, files in os.walk(self.path):
            dirs.sort()  # a stable walk, so messages are reproducible
            for fname in sorted(files):
                if fname.lower().endswith(IMAGE_SUFFIXES):
                    self._add(index, clashes, os.path.join(dirpath, fname))
        self._check_clashes(clashes)
        return index

    def _index_zip(self) -> dict[str, str]:
        index: dict[str, str] = {}
        clashes: list[str] = []
        encrypted = []
        for info in self._zip.infolist():
            if info.is_dir() or not info.filename.lower().endswith(IMAGE_SUFFIXES):
                continue
            self._add(index, clashes, info.filename)
            if info.flag_bits & 0x1:
                encrypted.append(info.filename)
        self._check_clashes(clashes)
        if encrypted and self.password is None:
            raise DataError(
                f"{self.path}: the zip is password-protected ({len(encrypted)} encrypted images). "
                "Request the password from the DeepFashion authors, then either pass it with --password "
                f"or unzip the archive yourself (`unzip -P PASSWORD {self.path.name}`) and pass the folder"
            )
        return index

    def read(self, flat: str) -> bytes:
        """The file's bytes; a zip member is CRC-checked by zipfile while reading."""
        if self._zip is None:
            return Path(self.index[flat]).read_bytes()
        try:
            return self._zip.read(self.index[flat], pwd=self.password)
        except RuntimeError as err:  # zipfile's "Bad password for file ..."
            raise DataError(
                f"{self.path}: cannot decrypt {self.index[flat]} ({err}); check --password"
            ) from None
        except NotImplementedError as err:  # e.g. AES encryption, which zipfile cannot read
            raise DataError(
                f"{self.path}: {err}; unzip the archive with 7z or unzip and pass the folder instead"
            ) from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _flat_or_none(path: str) -> str | None:
    # Anything that is not an In-shop image path (a stray README, __MACOSX/...) is ignored, as in CFLD.
    if "__MACOSX" in path:
        return None
    try:
        return df.flatten_name(path)
    except DataError:
        return None


def check_image_bytes(data: bytes, label: str) -> str | None:
    """None if ``data`` decodes as an image, else the reason. JPEGs are decoded at 1/8 scale (draft mode),
    which still reads the whole entropy-coded stream, so truncation is caught at a fraction of the cost."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except Exception as err:  # noqa: BLE001 - PIL raises many types for bad files; all mean "unreadable"
        return f"{label}: {err}"
    return None


# Errors of the writing side; a copy failing with one of these is not a bad source image.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


def _place(source: ImageSource, flat: str, dest: Path, method: str, verify: bool) -> tuple[str, str | None]:
    """Put one image at ``dest``; returns (method used, problem or None)."""
    try:
        if source._zip is None and method == "hardlink":
            data = None
            try:
                os.link(source.index[flat], dest)
                used = "hardlink"
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(source.index[flat], dest)
                used = "copy"
            if verify:
                data = dest.read_bytes()
        else:
            data = source.read(flat)
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
            used = "copy"
    except OSError as err:
        if err.errno in _WRITE_ERRNOS or (
            err.filename is not None and str(err.filename).startswith(str(dest.parent))
        ):
            raise  # the output side (a full disk, a read-only folder): not the source image's fault
        return "copy", f"{source.index[flat]}: unreadable ({err})"
    except zipfile.BadZipFile as err:
        return "copy", f"{source.index[flat]}: unreadable ({err})"
    problem = check_image_bytes(data, source.index[flat]) if verify and data is not None else None
    return used, problem


def _split_complete(out_dir: Path, names: list[str]) -> bool:
    if not out_dir.is_dir():
        return False
    present = {e.name for e in os.scandir(out_dir) if e.is_file() and e.stat().st_size > 0}
    return present == set(names)


def _progress(names: list[str], desc: str) -> Iterator[str]:
    from tqdm import tqdm

    yield from tqdm(names, desc=desc, unit="img")


def prepare(
    images: str | os.PathLike,
    splits: str | os.PathLike,
    out: str | os.PathLike,
    link: str = "hardlink",
    verify: bool = True,
    password: str | None = None,
) -> PrepareReport:
    """Build ``<out>/{train,test}_highres`` from ``images`` for the names in ``<splits>/{train,test}.lst``.

    A split folder that already holds exactly its listed images is left as it is (rerunnable).
    Raises one DataError naming every missing or unreadable image; then nothing is changed.
    """
    splits, out = Path(splits), Path(out)
    lists = {split: df.read_list(df.list_file(splits, split)) for split in df.SPLITS}
    check_split_files(splits)  # bad split CSVs are refused before any image is placed
    check_writable([df.list_file(out, split) for split in df.SPLITS])
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in df.SPLITS if not _split_complete(df.image_dir(out, s), lists[s])]
    if not todo:
        _copy_split_files(splits, out)
        _validate_root(out)
        return PrepareReport(copied={s: 0 for s in df.SPLITS}, skipped=True, method=link)
    source = ImageSource(images, password)
    try:
        missing = [(s, n) for s in todo for n in lists[s] if n not in source.index]
        if missing:
            shown = "\n  ".join(f"{df.unflatten_name(n, root='img_highres')} ({s}: {n})" for s, n in missing)
            raise DataError(
                f"{source.path}: {len(missing)} image(s) listed in {splits}/train.lst or test.lst are missing "
                f"(found {len(source.index)} In-shop images); nothing was written:\n  {shown}\n"
                f"Pass the complete img_highres folder or zip. {_GET_IMAGES}"
            )
        copied, used = {s: 0 for s in df.SPLITS}, set()
        staged: dict[str, Path] = {}
        problems: list[str] = []
        try:
            for split in todo:
                stage = staging_dir(df.image_dir(out, split))
                staged[split] = stage
                for name in _progress(lists[split], f"prepare {split}"):
                    how, problem = _place(source, name, stage / name, link, verify)
                    used.add(how)
                    if problem:
                        problems.append(problem)
                    copied[split] += 1
            if problems:
                raise DataError(
                    f"{source.path}: {len(problems)} image(s) are unreadable (corrupt, truncated or failing the zip "
                    "CRC); nothing was written:\n  "
                    + "\n  ".join(problems)
                    + "\nReplace them from the original archive."
                )
            for split, stage in staged.items():
                swap_in_dir(stage, df.image_dir(out, split))
            _copy_split_files(splits, out)
        finally:
            for stage in staged.values():
                if stage.exists():
                    shutil.rmtree(stage)
    finally:
        source.close()
    _validate_root(out)
    return PrepareReport(copied=copied, skipped=False, method="+".join(sorted(used)) or link)


def check_split_files(folder: Path) -> None:
    """Refuse split files that do not parse or do not agree with each other (one DataError, every problem)."""
    problems: list[str] = []
    for split in df.SPLITS:

        def present(path: Path) -> Path | None:
            return path if path.exists() else None

        problems += df.split_file_problems(
            present(df.pairs_file(folder, split)),
            present(df.annotation_file(folder, split)),
            present(df.list_file(folder, split)),
        )
    if problems:
        raise DataError(
            f"{folder}: the split files do not agree with each other; nothing was written:\n- "
            + "\n- ".join(problems)
            + "\nReplace them with the standard split files (`pgpis fetch deepfashion --out ROOT`)"
        )


def _validate_root(out: Path) -> None:
    # The prepared root passes the check every command that reads a dataset makes (validate_dataset).
    for split in df.SPLITS:
        if df.pairs_file(out, split).exists() and df.annotation_file(out, split).exists():
            df.validate_dataset(out, split)


def _copy_split_files(splits: Path, out: Path) -> None:
    """Give ``out`` its own copy of the split files, so it is a complete dataset root (all or none)."""
    if splits.resolve() == out.resolve():
        return
    names = [name for name in SPLIT_FILES if (splits / name).exists()]
    with commit_outputs([out / name for name in names]) as temps:
        for name, tmp in zip(names, temps):
            shutil.copyfile(splits / name, tmp)
