"""Atomic file output: every file the suite writes appears whole or not at all.

Writers go to a temporary file in the destination folder and ``os.replace`` it into place, so a
killed job never leaves a half-written PNG, JSON or checkpoint, and nothing the user had is lost
before the new content is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The process umask, read once at import (os.umask can only be read by setting it, which would race
# with threads writing files). mkstemp creates files 0600; outputs get the usual 0666 & ~umask.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def default_mode(directory: bool = False) -> int:
    """The permissions a plain ``open()`` (or ``mkdir``) would give under the process umask."""
    return (0o777 if directory else 0o666) & ~_UMASK


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The temporary file keeps ``dest``'s suffix (so libraries that infer the format from the
    extension, e.g. PIL or numpy, still work). On an exception the temporary file is removed
    and ``dest`` is untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix, dir=dest.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, default_mode())  # readable like any other file the user writes, not 0600
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(dest, text.encode("utf-8"))


def write_json_atomic(dest: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(dest, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def save_png_atomic(dest: str | os.PathLike, image: Any) -> None:
    """Save a PIL image (or HxWx3 uint8 array) as PNG atomically."""
    import numpy as np
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    with atomic_path(dest, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def staging_dir(dest: str | os.PathLike) -> Path:
    """A new empty folder beside ``dest`` (same file system, so it can be renamed onto it), with the
    permissions of an ordinary folder (mkdtemp makes it private)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    stage.chmod(default_mode(directory=True))
    return stage


def swap_in_dir(stage: Path, dest: str | os.PathLike) -> None:
    """Put the finished ``stage`` at ``dest``; an old ``dest`` is moved aside first and deleted only
    after the rename, so ``dest`` is always either the old folder or the new one, whole."""
    dest = Path(dest)
    if not dest.exists():
        os.replace(stage, dest)
        return
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    os.replace(dest, old)
    os.replace(stage, dest)
    shutil.rmtree(old)


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder beside ``dest``; on success it replaces ``dest``, on an exception it is
    removed and ``dest`` is untouched."""
    stage = staging_dir(dest)
    try:
        yield stage
        swap_in_dir(stage, dest)
    finally:
        if stage.exists():
            shutil.rmtree(stage)


def check_outputs_writable(paths: list[str | os.PathLike | None]) -> None:
    """Before long work: each output's folder can be made and written to, and no output path is
    something other than a regular file (a folder, a device node), which we would never replace.

    Raises ``ConfigError`` naming the path. Writes and removes one empty temp file per folder.
    """
    from bench.errors import ConfigError

    for p in paths:
        if p is None:
            continue
        dest = Path(p)
        if dest.exists() and not dest.is_file():
            kind = "a folder" if dest.is_dir() else "not a regular file"
            raise ConfigError(f"{dest}: output path is {kind}; refusing to replace it. Choose a file path")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".probe", dir=dest.parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise ConfigError(
                f"{dest}: cannot write the output there ({err.strerror}); choose a writable folder "
                "(checked before any work started)"
            ) from None


def commit_outputs_together(writers: dict[str | os.PathLike, Any]) -> None:
    """Write several output files as one change: each ``writer(tmp_path)`` fills a temp file beside its
    destination; only when every one succeeded are they all renamed into place. On any failure
    (disk full, permissions) the temps are removed and every destination keeps its old content.

    An OSError becomes a ``ConfigError`` naming the file. A destination that exists and is not a
    regular file is refused before anything is written.
    """
    from bench.errors import ConfigError

    check_outputs_writable(list(writers))
    temps: list[tuple[Path, Path]] = []
    current = None
    renamed = 0
    try:
        for dest, write in writers.items():
            current = Path(dest)
            fd, tmp = tempfile.mkstemp(prefix=f".{current.name}.", suffix=current.suffix, dir=current.parent)
            os.close(fd)
            temps.append((Path(tmp), current))
            os.chmod(tmp, default_mode())
            write(Path(tmp))
        for tmp, dest in temps:
            current = dest
            os.replace(tmp, dest)
            renamed += 1
    except OSError as err:
        state = (
            "nothing was replaced, the previous outputs are as they were"
            if not renamed
            else f"{renamed} of {len(temps)} outputs were already replaced; rerun to make them consistent"
        )
        raise ConfigError(
            f"{current}: could not write it ({err.strerror or err}); {state}. Free space or fix permissions and rerun"
        ) from None
    finally:
        for tmp, _dest in temps:
            if tmp.exists():
                tmp.unlink()
