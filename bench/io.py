"""Atomic file output: every file the suite writes appears whole or not at all.

Writers go to a temporary file in the destination folder and ``os.replace`` it into place, so a
killed job never leaves a half-written PNG, JSON or checkpoint, and nothing the user had is lost
before the new content is complete.

Every temporary file and staging folder is named ``.pgpis-tmp-<host>-<pid>-<dest name>.<random>``
(:data:`TEMP_PREFIX`), so it is recognisable as ours. The first time a process writes into a
folder, temporaries there left by a process that no longer runs (a run killed with -9) are
removed; a folder that was moved aside by :func:`swap_in_dir` and never replaced is put back.
An existing destination that is not a regular file (a device, a FIFO, a folder) is never replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

# One recognisable prefix for every temporary name we create. The host and pid after it tell a live
# run's temporaries (left alone) from a killed run's (removed); the host, because ranks on several
# machines may write into one shared folder, and a pid is only meaningful on its own machine.
TEMP_PREFIX = ".pgpis-tmp-"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
# ".pgpis-tmp-<host>-<pid>-<name>.<random>" is a temporary; ".pgpis-tmp-<host>-<pid>.old-<name>" is the
# user's folder <name> moved aside by swap_in_dir (a "." after the pid never occurs in a temporary's name).
_TEMP_RE = re.compile(r"^\.pgpis-tmp-([0-9a-f]{6})-(\d+)([-.])(.+)$")
_OLD_MARK = "old-"


def temp_owner(pid: int | None = None) -> str:
    """The start of every temporary name a process makes: ``.pgpis-tmp-<host>-<pid>``."""
    return f"{TEMP_PREFIX}{_HOST}-{os.getpid() if pid is None else pid}"


# The process umask, read once at import (os.umask can only be read by setting it, which would race
# with threads writing files). mkstemp creates files 0600; outputs get the usual 0666 & ~umask.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def default_mode(directory: bool = False) -> int:
    """The permissions a plain ``open()`` (or ``mkdir``) would give under the process umask."""
    return (0o777 if directory else 0o666) & ~_UMASK


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove our temporaries in ``folder`` whose process is gone; returns what was removed.

    Only names with :data:`TEMP_PREFIX` are touched, only directly in ``folder``. A destination
    folder moved aside by a killed :func:`swap_in_dir` is renamed back when nothing replaced it.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(TEMP_PREFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for name in entries:
        match = _TEMP_RE.match(name)
        if match is None or match.group(1) != _HOST or _pid_alive(int(match.group(2))):
            continue  # not ours, another machine's, or its process still runs
        path = folder / name
        if match.group(3) == "." and match.group(4).startswith(_OLD_MARK):
            original = folder / match.group(4)[len(_OLD_MARK) :]
            if not os.path.lexists(original):
                os.replace(path, original)  # the killed run had moved the user's folder aside: put it back
                continue
        _remove(path)
        removed.append(path)
    return removed


_swept: set[str] = set()
_swept_lock = threading.Lock()


def _sweep_once(folder: Path) -> None:
    """:func:`remove_stale_temps` on the first write into ``folder`` by this process (cheap after that)."""
    key = os.path.abspath(folder)
    with _swept_lock:
        if key in _swept:
            return
        _swept.add(key)
    remove_stale_temps(folder)


def temp_name(dest: str | os.PathLike, suffix: str = "") -> str:
    """A new temporary name for ``dest`` (not created): ``.pgpis-tmp-<pid>-<name>.<random><suffix>``."""
    return f"{temp_owner()}-{Path(dest).name}.{os.urandom(4).hex()}{suffix}"


def refuse_non_regular(dest: str | os.PathLike) -> None:
    """Raise ConfigError if ``dest`` exists and is not a regular file (or a link to one)."""
    dest = Path(dest)
    try:
        mode = os.stat(dest).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise ConfigError(
            f"{dest}: is {kind}, not a regular file; refusing to replace it. Give another output path"
        )


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    The temporary file keeps ``dest``'s suffix (so libraries that infer the format from the
    extension, e.g. PIL or numpy, still work). On an exception the temporary file is removed
    and ``dest`` is untouched.
    """
    dest = Path(dest)
    refuse_non_regular(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(dest.parent)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{temp_owner()}-{dest.name}.",
        suffix=suffix if suffix is not None else dest.suffix,
        dir=dest.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, default_mode())  # readable like any other file the user writes, not 0600
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    except OSError as err:
        raise _naming(err, dest, tmp_path) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _naming(err: OSError, dest: Path, tmp: Path) -> OSError:
    """The error with the destination the user asked for as its file name: a failing write() (a full
    disk, a file size limit) carries no name, and the temporary's name means nothing to the user."""
    if err.errno is None or err.filename not in (None, str(tmp), os.fspath(tmp)):
        return err
    return type(err)(err.errno, err.strerror, str(dest))


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
    _sweep_once(dest.parent)
    stage = Path(tempfile.mkdtemp(prefix=f"{temp_owner()}-{dest.name}.", dir=dest.parent))
    stage.chmod(default_mode(directory=True))
    return stage


def swap_in_dir(stage: Path, dest: str | os.PathLike) -> None:
    """Put the finished ``stage`` at ``dest``; an old ``dest`` is moved aside first and deleted only
    after the rename, so ``dest`` is always either the old folder or the new one, whole."""
    dest = Path(dest)
    if not dest.exists():
        os.replace(stage, dest)
        return
    old = dest.with_name(f"{temp_owner()}.{_OLD_MARK}{dest.name}")
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


def check_writable(paths: Sequence[str | os.PathLike]) -> None:
    """Fail early, before long work, if any output path cannot be written.

    Each path must not be a non-regular file, and the folder it goes into (or the nearest one that
    exists, if it is still to be made) must accept a new file: this is probed by creating and
    removing a temporary file, which also catches a read-only file system for root.
    """
    for raw in paths:
        dest = Path(raw)
        refuse_non_regular(dest)
        folder = dest.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ConfigError(f"{dest}: cannot write it: {folder} is not a folder; choose another path")
        probe = folder / temp_name(dest, ".probe")
        try:
            probe.touch(exist_ok=False)
        except OSError as err:
            raise ConfigError(
                f"{dest}: cannot write into {folder} ({err.strerror}); make the folder writable "
                "(e.g. `chmod u+w`), free space, or choose another output path"
            ) from None
        probe.unlink()


def check_writable_folder(folder: str | os.PathLike) -> None:
    """:func:`check_writable` for an output folder (made if absent): a new file must be possible in it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder; choose another output folder")
    check_writable([folder / temp_name(folder, ".probe")])


@contextlib.contextmanager
def commit_outputs(dests: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Write several output files as one set: yield one temporary path per ``dest`` (same order).

    After the block, every temporary is renamed onto its destination; if the block raises, every
    temporary is removed and no destination changes. Should a rename fail part way (a file system
    error), the destinations already replaced get their old content back, so the set is never
    half-updated. Destinations that are not regular files are refused before anything is written.
    """
    targets = [Path(d) for d in dests]
    for dest in targets:
        refuse_non_regular(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _sweep_once(dest.parent)
    temps = [dest.with_name(temp_name(dest, dest.suffix)) for dest in targets]
    backups: list[tuple[Path, Path | None]] = []  # (dest, hard link to its old content or None)
    try:
        yield temps
        for tmp in temps:
            if not tmp.exists():
                raise FileNotFoundError(f"{tmp}: the writer did not create this output")
            os.chmod(tmp, default_mode())
        for dest, tmp in zip(targets, temps):
            backup = None
            if dest.exists():
                backup = dest.with_name(temp_name(dest, ".bak"))
                try:
                    os.link(dest, backup)
                except OSError:  # a file system without hard links
                    shutil.copy2(dest, backup)
            backups.append((dest, backup))
            os.replace(tmp, dest)
    except BaseException:
        for dest, backup in backups:  # put the old set back
            if backup is not None:
                os.replace(backup, dest)
            else:
                with contextlib.suppress(FileNotFoundError):
                    dest.unlink()
        raise
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        for _dest, backup in backups:
            if backup is not None:
                with contextlib.suppress(FileNotFoundError):
                    backup.unlink()


def check_outputs_writable(paths: Sequence[str | os.PathLike | None]) -> None:
    """:func:`check_writable` for a command's optional outputs (``None``: that output was not asked for)."""
    check_writable([p for p in paths if p is not None])


def commit_outputs_together(writers: dict[str | os.PathLike, Callable[[Path], None]]) -> None:
    """:func:`commit_outputs` driven by one ``writer(tmp_path)`` per destination.

    An OSError while writing (disk full, permissions) becomes a ``ConfigError`` naming the file; every
    destination then keeps its old content.
    """
    dests = [Path(d) for d in writers]
    check_writable(dests)
    current = dests[0] if dests else None
    try:
        with commit_outputs(dests) as temps:
            for dest, tmp, write in zip(dests, temps, writers.values()):
                current = dest
                write(tmp)
    except OSError as err:
        raise ConfigError(
            f"{current}: could not write it ({err.strerror or err}); nothing was replaced, the previous "
            "outputs are as they were. Free space or fix permissions and rerun"
        ) from None
