"""Readers for pose files: every person of a file as (18, 3) (x, y, confidence) in COCO-18 order.

Formats (each written from its published specification; tests build files the same way):
- OpenPose ``--write_json`` (doc/02_output.md): ``{"version": 1.3, "people": [{"pose_keypoints_2d":
  [x0, y0, c0, x1, ...], ...}]}``; 18 triplets = the COCO model, 25 = BODY_25; version 1.0 files
  name the array ``pose_keypoints``. Undetected points are written as 0, 0, 0. The image size is not
  in the file.
- COCO keypoints (cocodataset.org/#format-data): the annotation form, a dict with ``images``
  (``id``, ``file_name``, ``width``, ``height``) and ``annotations`` (``image_id``, ``keypoints``:
  17 triplets ``x, y, v`` with v = 0 not labelled, 1 labelled but hidden, 2 visible); or the
  results form, a list of ``{"image_id", "category_id", "keypoints", "score"}`` whose third values
  are the detector's confidences. Only the results form lacks the image size.
- DeepFashion annotation rows ``name:[y0, ..., y17]:[x0, ..., x17]`` (a whole annotation CSV, or a
  file with a single row, header optional), already in the 256x176 frame (-1 missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data import deepfashion as df
from bench.errors import DataError
from bench.poses.layouts import COCO17_NAMES, LAYOUT_POINTS, to_coco18

OPENPOSE_LENGTHS = {3 * n: layout for layout, n in LAYOUT_POINTS.items() if layout.startswith("openpose")}


@dataclass
class PoseFile:
    """The persons of one pose file (or of its one selected image)."""

    path: Path
    layout: str  # openpose-coco18 | openpose-body25 | coco17 | deepfashion
    persons: list[np.ndarray]  # each (18, 3): x, y, confidence (0 = not detected)
    frame: tuple[int, int] | None = None  # (H, W) of the image the points were found on, when known
    image: str | None = None  # the image the persons belong to (COCO files), when named
    notes: list[str] = field(default_factory=list)


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: pose file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the pose file ({err})") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def _triplets(values: object, n: int, where: str) -> np.ndarray:
    if not isinstance(values, list) or len(values) != 3 * n:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise DataError(f"{where}: expected {3 * n} numbers ({n} x, y, confidence triplets), got {got}")
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(n, 3)
    except (TypeError, ValueError):
        raise DataError(f"{where}: keypoint values must be numbers") from None
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: keypoint values must be finite numbers")
    return arr


def read_openpose(path: Path, data: dict) -> PoseFile:
    people = data.get("people")
    if not isinstance(people, list):
        raise DataError(f"{path}: an OpenPose JSON needs a 'people' list (OpenPose --write_json output)")
    persons, layout = [], None
    for i, person in enumerate(people):
        key = "pose_keypoints_2d" if "pose_keypoints_2d" in person else "pose_keypoints"
        values = person.get(key) if isinstance(person, dict) else None
        where = f"{path}: people[{i}].{key}"
        if not isinstance(values, list) or len(values) not in OPENPOSE_LENGTHS:
            got = len(values) if isinstance(values, list) else "nothing"
            raise DataError(
                f"{where}: expected 54 (COCO-18) or 75 (BODY_25) numbers, got {got}; other OpenPose models "
                "(MPI, BODY_135) do not have the COCO-18 points"
            )
        this = OPENPOSE_LENGTHS[len(values)]
        if layout is not None and this != layout:
            raise DataError(f"{where}: {this} after {layout} in the same file")
        layout = this
        persons.append(to_coco18(_triplets(values, LAYOUT_POINTS[this], where), this))
    return PoseFile(path, layout or "openpose-coco18", persons)


def _coco_points(ann: object, where: str) -> np.ndarray:
    if not isinstance(ann, dict) or "keypoints" not in ann:
        raise DataError(f"{where}: a COCO keypoint entry needs 'keypoints' (17 x, y, v triplets)")
    return to_coco18(_triplets(ann["keypoints"], 17, f"{where}.keypoints"), "coco17")


def read_coco(path: Path, data: object, select: str | None, image_hint: str | None) -> PoseFile:
    """The persons of ONE image of a COCO file: ``select`` (file name or id), else the image named
    ``image_hint`` (the photo's name), else the file's only image."""
    if isinstance(data, dict):
        cats = data.get("categories") or []
        for cat in cats:
            names = cat.get("keypoints") if isinstance(cat, dict) else None
            if names is not None and tuple(names) != COCO17_NAMES:
                raise DataError(
                    f"{path}: category {cat.get('name')!r} has keypoints {names}, not the 17 COCO person "
                    "keypoints; only COCO person keypoints can be read"
                )
        anns = data.get("annotations")
        if not isinstance(anns, list):
            raise DataError(f"{path}: a COCO keypoint file needs an 'annotations' list")
        images = {img.get("id"): img for img in data.get("images") or [] if isinstance(img, dict)}
    else:
        anns, images = data, {}
    anns = [a for a in anns if isinstance(a, dict) and "keypoints" in a]
    ids = list(dict.fromkeys(a.get("image_id") for a in anns))
    names = {i: str(images[i].get("file_name", i)) if i in images else str(i) for i in ids}

    def matches(i: object, wanted: str) -> bool:
        return wanted in (str(i), names[i], Path(names[i]).name)

    if select is not None:
        chosen = [i for i in ids if matches(i, select)]
        if not chosen:
            raise DataError(
                f"{path}: no keypoints for image {select!r}; the file has: {', '.join(names[i] for i in ids[:10])}"
            )
    elif image_hint is not None and any(matches(i, image_hint) for i in ids):
        chosen = [i for i in ids if matches(i, image_hint)]
    elif len(ids) == 1:
        chosen = ids
    elif not ids:
        raise DataError(f"{path}: the COCO file holds no keypoint annotations")
    else:
        raise DataError(
            f"{path}: keypoints of {len(ids)} images ({', '.join(names[i] for i in ids[:5])}, ...); "
            f"choose one with {path.name}#<file_name or image id>"
        )
    image_id = chosen[0]
    persons = [
        _coco_points(a, f"{path}: annotations[{k}]")
        for k, a in enumerate(anns)
        if a.get("image_id") == image_id
    ]
    frame = None
    info = images.get(image_id)
    if info is not None and "height" in info and "width" in info:
        frame = (int(info["height"]), int(info["width"]))
    return PoseFile(path, "coco17", persons, frame, names[image_id])


def read_annotation_rows(path: Path, select: str | None) -> PoseFile:
    """A DeepFashion annotation file (or single row; header optional): the row ``select`` or the only one."""
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read the annotation file ({err})") from None
    start = 1 if lines and tuple(f.strip() for f in lines[0].split(":")) == df.ANNOTATION_HEADER else 0
    rows = {}
    for lineno, line in enumerate(lines[start:], start=start + 1):
        name, kps = df.parse_annotation_row(line, path, lineno)
        rows[name] = kps
    if not rows:
        raise DataError(f"{path}: no annotation row (expected name:[y0, ..., y17]:[x0, ..., x17])")
    if select is None and len(rows) > 1:
        raise DataError(
            f"{path}: {len(rows)} annotation rows; choose one with {path.name}#<image name> "
            f"(e.g. {next(iter(rows))})"
        )
    name = select if select is not None else next(iter(rows))
    if name not in rows:
        raise DataError(f"{path}: no annotation row for {name!r}")
    return PoseFile(path, "deepfashion", [annotation_points(rows[name])], df.FRAME, name)


def annotation_points(yx: np.ndarray) -> np.ndarray:
    """DeepFashion (18, 2) (y, x), -1 missing -> (18, 3) (x, y, c) with c = 1 visible, 0 missing."""
    yx = np.asarray(yx, dtype=np.float64)
    visible = (yx[:, 0] != -1) & (yx[:, 1] != -1)
    out = np.zeros((len(yx), 3))
    out[:, 0], out[:, 1], out[:, 2] = yx[:, 1], yx[:, 0], visible
    out[~visible, :2] = 0.0
    return out


def read_pose_file(path: str | Path, select: str | None = None, image_hint: str | None = None) -> PoseFile:
    """Read any supported pose file; ``select`` picks an image (COCO) or a row (annotation file)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: pose file not found")
    if path.suffix.lower() != ".json":
        return read_annotation_rows(path, select)
    data = _load_json(path)
    if isinstance(data, dict) and "people" in data:
        if select is not None:
            raise DataError(f"{path}: an OpenPose file holds one image; '#{select}' selects nothing")
        return read_openpose(path, data)
    if (isinstance(data, dict) and "annotations" in data) or (
        isinstance(data, list) and all(isinstance(a, dict) and "keypoints" in a for a in data)
    ):
        return read_coco(path, data, select, image_hint)
    raise DataError(
        f"{path}: not a pose file we can read: expected OpenPose JSON ('people'), COCO keypoints "
        "('annotations', or a list of detections with 'keypoints') or DeepFashion annotation rows"
    )
