"""The generation manifest: what made the images in an output folder.

``<out>/manifest.json`` records every setting that changes pixels (``settings``) plus facts
that do not (method info, dataset path, pair count, versions). A folder is reused (resumed)
only when its recorded ``settings`` equal the new ones exactly; otherwise it is refused, so one
folder never mixes images from two configurations.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

MANIFEST_NAME = "manifest.json"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (checkpoints can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def path_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder as the sorted list of (relative path, file sha256)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: checkpoint not found; pass an existing file or folder to --checkpoint")
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def strings_sha256(items: list[str]) -> str:
    return hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()


def normalise(obj: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, keys strings), for comparing."""
    return json.loads(json.dumps(obj, default=str))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ, with both values."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                found.append(f"{path}: absent in the folder, now {json.dumps(new[key])}")
            elif key not in new:
                found.append(f"{path}: {json.dumps(old[key])} in the folder, now absent")
            else:
                found.extend(_differences(old[key], new[key], path))
        return found
    if old != new:
        return [f"{prefix or 'settings'}: {json.dumps(old)} in the folder, now {json.dumps(new)}"]
    return []


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's manifest, ``None`` when there is none; a ConfigError when it is unreadable."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"{path}: unreadable generation manifest ({err}); the folder's images cannot be trusted. "
            f"Use a new --out folder, or delete {Path(out_dir)} and generate again."
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
        raise ConfigError(
            f"{path}: not a generation manifest (no 'settings' object). "
            f"Use a new --out folder, or delete {Path(out_dir)} and generate again."
        )
    return manifest


def check_output_folder(out_dir: str | os.PathLike, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Refuse a folder made with other settings (or holding PNGs without a manifest); touch nothing.

    Returns the existing manifest when the folder can be resumed, ``None`` for a new folder.
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        pngs = sorted(out_dir.glob("[!.]*.png")) if out_dir.is_dir() else []
        if pngs:
            raise ConfigError(
                f"{out_dir}: holds {len(pngs)} PNG file(s) (e.g. {pngs[0].name}) but no {MANIFEST_NAME}, "
                f"so their settings are unknown. Use a new --out folder, or delete {out_dir} and generate again."
            )
        return None
    diffs = _differences(normalise(manifest["settings"]), normalise(settings))
    if diffs:
        raise ConfigError(
            f"{out_dir / MANIFEST_NAME}: this folder holds images generated with different settings:\n  "
            + "\n  ".join(diffs)
            + f"\nNothing was changed. Use a new --out folder, or delete {out_dir} to regenerate with the new settings."
        )
    return manifest
