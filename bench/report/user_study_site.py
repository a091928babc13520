"""`pgpis user-study make`: the participants' site (handed out or served) and the key (kept apart).

``<out>/site/`` is self-contained: ``index.html``, ``study.js``, ``study.css`` (copied from
``user_study_static/``), ``study-data.js`` (this study's items, as a script so the page also works
from ``file://``, where a page may not read a JSON file) and ``images/``. Its files name no run, pair,
folder or method: images are named by item (``q01_A.png``, ``b2_07.png``) and re-encoded as PNG at one
size with no metadata. ``key.json`` (which image is which) goes to ``<out>/key.json``, beside the
site, or to the path given: never inside the folder participants get.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.errors import ConfigError
from bench.io import atomic_dir, write_json_atomic
from bench.report.figures import pose_image, to_uint8
from bench.report.generated import GeneratedRun, Pair
from bench.report.user_study import FORMAT, GENERATED, REAL, StudySettings, key_sha256
from bench.report.user_study_plan import plan_study, thumbnail, wrong_option

SITE_FORMAT = "pgpis-user-study-site/1"
SITE_DATA = "study-data.js"
SITE_DATA_PREFIX = "window.PGPIS_STUDY = "  # study-data.js is this, the JSON, and ";\n"
STATIC = Path(__file__).with_name("user_study_static")
STATIC_FILES = ("index.html", "study.js", "study.css")


def site_items(items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What the page needs of each item, in order; an attention check looks like any question."""
    out: list[dict[str, Any]] = []
    blocks = sorted({v["block"] for v in items.values() if v["part"] == "real_fake"})
    for item, spec in items.items():
        if spec["part"] in ("best", "attention"):
            out.append(
                {
                    "id": item,
                    "kind": "best",
                    "source": f"images/{item}_source.png",
                    "pose": f"images/{item}_pose.png",
                    "options": [[letter, f"images/{item}_{letter}.png"] for letter in spec["options"]],
                }
            )
        else:
            out.append(
                {
                    "id": item,
                    "kind": "real_fake",
                    "block": blocks.index(spec["block"]) + 1,
                    "blocks": len(blocks),
                    "image": f"images/{item}.png",
                }
            )
    return out


def read_site_data(site: str | os.PathLike) -> dict[str, Any]:
    """The study-data.js of a site folder (the server checks answers against it)."""
    from bench.errors import DataError

    path = Path(site) / SITE_DATA
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text.removeprefix(SITE_DATA_PREFIX).rstrip().removesuffix(";"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: not found; --study is the site folder written by `pgpis user-study make` (<out>/site)"
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable study data ({err})") from None
    if not isinstance(data, dict) or data.get("format") != SITE_FORMAT:
        raise DataError(f"{path}: not study data of format {SITE_FORMAT}")
    return data


class _Images:
    """Every picture of the study at the study size, loaded once (the plan's fingerprints and the
    written PNGs are the same pixels)."""

    def __init__(self, dataset: DeepFashionDataset, runs: list[GeneratedRun], size: tuple[int, int]):
        self.dataset, self.size = dataset, size
        self.folder = {run.label: run for run in runs}
        self.cache: dict[tuple[str, str, str], np.ndarray] = {}

    def get(self, kind: str, label: str, name: str) -> np.ndarray:
        key = (kind, label, name)
        if key not in self.cache:
            path = self.dataset.image_path(name) if kind == REAL else self.folder[label].image(name)
            self.cache[key] = to_uint8(load_image(path, self.size))
        return self.cache[key]

    def thumbnail(self, kind: str, label: str, name: str) -> np.ndarray:
        return thumbnail(self.get(kind, label, name))


def _write_images(
    images: _Images, items: dict[str, dict[str, Any]], folder: Path, size: tuple[int, int], progress: bool
) -> None:
    from PIL import Image
    from tqdm import tqdm

    def save(array: np.ndarray, name: str) -> None:
        Image.fromarray(array).save(folder / name, format="PNG")  # PIL writes no text chunks

    for item, spec in tqdm(items.items(), desc="user-study images", unit="item", disable=not progress):
        if spec["part"] in ("best", "attention"):
            save(images.get(REAL, "", spec["source"]), f"{item}_source.png")
            save(pose_image(images.dataset.keypoints(spec["target"]), size), f"{item}_pose.png")
            for letter, option in spec["options"].items():
                if spec["part"] == "best":
                    picture = images.get(GENERATED, option, spec["pair"])
                elif option == REAL:
                    picture = images.get(REAL, "", spec["target"])
                else:
                    picture = wrong_option(images.get(REAL, "", spec["target"]), option)
                save(picture, f"{item}_{letter}.png")
        elif spec["truth"] == REAL:
            save(images.get(REAL, "", spec["image"]), f"{item}.png")
        else:
            save(images.get(GENERATED, spec["run"], spec["pair"]), f"{item}.png")


def make_study(
    dataset: DeepFashionDataset,
    runs: list[GeneratedRun],
    usable: list[Pair],
    out: str | os.PathLike,
    settings: StudySettings,
    left_out: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    key_file: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write ``out/site/`` and the key (``out/key.json`` or ``key_file``); return the key."""
    out = Path(out)
    key_dest = Path(key_file) if key_file else out / "key.json"
    if key_file and key_dest.resolve().is_relative_to(out.resolve()):
        if key_dest.resolve() != (out / "key.json").resolve():
            raise ConfigError(
                f"--key {key_dest}: inside --out {out}, which make replaces whole (and whose site/ goes to "
                f"participants); put the key outside {out}, or leave the default {out}/key.json"
            )
    for path in (out, key_dest):
        if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
            raise ConfigError(
                f"{path}: exists; if it is an earlier study, its key.json is what scores the answers "
                "collected for it. Choose another --out, or pass --overwrite to replace it"
            )
    images = _Images(dataset, runs, settings.size)
    items, fairness = plan_study(runs, usable, settings, images.thumbnail)
    key: dict[str, Any] = {
        "format": FORMAT,
        "study_id": settings.study_id,
        "settings": settings.as_json(),
        "dataset": str(dataset.root),
        "split": dataset.split,
        "runs": {run.label: str(run.folder) for run in runs},
        "pairs_left_out_for_missing_images": left_out,
        "fairness": fairness,
        "items": items,
    }
    if not key["study_id"]:
        key["study_id"] = "study-" + key_sha256(key)[:12]
    data = {
        "format": SITE_FORMAT,
        "study": {"id": key["study_id"], "key_sha256": key_sha256(key)},
        "exposure_ms": settings.exposure_ms,
        "size": list(settings.size),
        "items": site_items(items),
    }
    with atomic_dir(out) as build:
        site = build / "site"
        (site / "images").mkdir(parents=True)
        _write_images(images, items, site / "images", settings.size, progress)
        for name in STATIC_FILES:
            shutil.copyfile(STATIC / name, site / name)
        (site / SITE_DATA).write_text(SITE_DATA_PREFIX + json.dumps(data, indent=1) + ";\n", encoding="utf-8")
        if not key_file or key_dest.resolve() == (out / "key.json").resolve():
            (build / "key.json").write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
        else:
            write_json_atomic(key_dest, key)
    return key
