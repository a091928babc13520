"""A pose or a source photo named on the command line -> keypoints in the 256x176 annotation frame.

A pose reference is one of
- ``FILE`` or ``FILE#SELECT``: a pose file (:mod:`bench.poses.readers`); ``SELECT`` names the image
  of a COCO file (file name or id) or the row of an annotation CSV;
- ``NAME``: an image of ``dataset`` (its row in the test, then the train annotation CSV).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.data import deepfashion as df
from bench.data.keypoints import MISSING, NUM_KEYPOINTS
from bench.errors import DataError
from bench.poses.framing import Framing, frame_for
from bench.poses.readers import PoseFile, read_pose_file

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_THRESHOLD = 0.1  # OpenPose's own peak threshold (DeepFashion's estimator used 0.1 too)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Pose:
    """One person's pose in the annotation frame."""

    keypoints: np.ndarray  # int32 (18, 2) (y, x) in 256x176, -1 missing
    name: str  # what pair ids use: the dataset name, or the file name (+ the selection)
    origin: str  # where it came from and how it was mapped, for messages and manifests


@dataclass
class Source:
    """The source photo, framed like a dataset image, and its pose."""

    image: Image.Image  # RGB, in the dataset's aspect (a dataset image: unchanged)
    pose: Pose
    path: Path


def _split_ref(ref: str) -> tuple[Path, str | None]:
    path = Path(ref)
    if path.exists() or "#" not in ref:
        return path, None
    head, _, select = ref.rpartition("#")
    return Path(head), select or None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "pose"


def choose_person(pf: PoseFile, person: int | None, threshold: float) -> tuple[np.ndarray, int]:
    """(x, y, c) of the chosen person with low-confidence points zeroed, and its index.

    ``person`` = None picks the largest: the person whose confident points span the largest
    bounding box (width x height), the first of equal ones.
    """
    if not pf.persons:
        raise DataError(f"{pf.path}: no person in the file")
    kept = []
    for pts in pf.persons:
        pts = pts.copy()
        low = (pts[:, 2] <= 0) | (pts[:, 2] < threshold)
        pts[low] = 0.0
        kept.append(pts)
    if person is not None:
        if not 0 <= person < len(kept):
            raise DataError(
                f"{pf.path}: --person {person} asked for, the file has {len(kept)} person(s) (0-based)"
            )
        index = person
    else:

        def area(pts: np.ndarray) -> float:
            vis = pts[pts[:, 2] > 0]
            return float(np.ptp(vis[:, 0]) * np.ptp(vis[:, 1])) if len(vis) else -1.0

        index = max(range(len(kept)), key=lambda i: (area(kept[i]), -i))
    if not (kept[index][:, 2] > 0).any():
        raise DataError(
            f"{pf.path}: person {index} has no keypoint with confidence >= {threshold}; lower --threshold "
            "or choose another --person"
        )
    return kept[index], index


def to_yx(points: np.ndarray) -> np.ndarray:
    """(18, 3) (x, y, c) -> (18, 2) float (y, x), -1 where c = 0."""
    out = np.stack([points[:, 1], points[:, 0]], axis=1).astype(np.float64)
    out[points[:, 2] <= 0] = MISSING
    return out


def _image_beside(pose_path: Path) -> Path | None:
    """The image OpenPose read to write ``<stem>_keypoints.json`` (or ``<stem>.json``), if it lies beside it."""
    stem = pose_path.stem
    stems = [stem[: -len("_keypoints")], stem] if stem.endswith("_keypoints") else [stem]
    for s in stems:
        for suffix in IMAGE_SUFFIXES:
            for candidate in (pose_path.with_name(s + suffix), pose_path.with_name(s + suffix.upper())):
                if candidate.is_file():
                    return candidate
    return None


def _open_rgb(path: Path, what: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, naming it
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: cannot read {what} ({err})") from None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: cannot read the image ({err})") from None


@functools.lru_cache(maxsize=4)
def _annotations(path: Path, mtime_ns: int) -> dict[str, np.ndarray]:
    # Read once per file and version: a pose sequence names many images of the same CSV.
    return df.read_annotations(path)


def _dataset_row(name: str, dataset: Path | None) -> np.ndarray | None:
    if dataset is None:
        return None
    for split in df.SPLITS[::-1]:  # test first: that is where a pose to borrow usually comes from
        path = df.annotation_file(dataset, split)
        if path.is_file():
            rows = _annotations(path, path.stat().st_mtime_ns)
            if name in rows:
                return rows[name]
    return None


def load_pose(
    ref: str,
    *,
    dataset: str | Path | None = None,
    person: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    frame: tuple[int, int] | None = None,
    image_hint: str | None = None,
    photo_frame: tuple[int, int] | None = None,
) -> tuple[Pose, Framing | None]:
    """The pose ``ref`` in the annotation frame, and the :class:`Framing` used (None: already there).

    ``frame`` (H, W) is the size of the image the pose was found on, for files that do not record it
    (OpenPose, COCO results); without it the image beside an OpenPose file (``<stem>_keypoints.json``
    -> ``<stem>.jpg``) gives it. ``photo_frame`` is the size of the photo the pose belongs to: it
    applies to every file, and a COCO file's own image size must agree with it.
    """
    path, select = _split_ref(ref)
    if not path.exists():
        row = _dataset_row(ref, Path(dataset) if dataset is not None else None)
        if row is None:
            where = (
                f" nor an image of the dataset {dataset}"
                if dataset is not None
                else " (pass --dataset to name dataset images)"
            )
            raise DataError(f"{ref}: not a pose file{where}")
        return Pose(row.astype(np.int32), ref, f"annotation of {ref} in {dataset}"), None
    pf = read_pose_file(path, select, image_hint)
    pts, index = choose_person(pf, person, threshold)
    label = _safe(path.name if select is None else f"{path.stem}-{Path(select).stem}{path.suffix}")
    if len(pf.persons) > 1:
        label = _safe(f"{Path(label).stem}-person{index}{path.suffix}")
    origin = f"{pf.layout} person {index} of {len(pf.persons)} in {path}" + (
        f" ({pf.image})" if pf.image else ""
    )
    if pf.layout == "deepfashion":
        return Pose(to_yx(pts).astype(np.int32), pf.image or label, origin), None
    size = pf.frame
    if photo_frame is not None:
        if size is not None and tuple(size) != tuple(photo_frame):
            raise DataError(
                f"{path}: the file gives its image as {size[1]}x{size[0]} (WxH) but the photo is "
                f"{photo_frame[1]}x{photo_frame[0]}; use the pose of this photo"
            )
        size = photo_frame
    if size is None and frame is not None:
        size = frame
    if size is None:
        beside = _image_beside(path)
        if beside is None:
            raise DataError(
                f"{path}: the file does not record the size of the image its keypoints were found on; "
                "pass it (--pose-frame HxW) or put that image beside the file "
                f"({path.stem.removesuffix('_keypoints')}.jpg)"
            )
        size = _image_size(beside)
        origin += f", image size from {beside.name}"
    yx = to_yx(pts)
    framing = frame_for(size, yx)
    return Pose(framing.keypoints(yx), label, f"{origin}; {framing.describe()}"), framing


def load_source(
    ref: str,
    *,
    pose: str | None = None,
    dataset: str | Path | None = None,
    person: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> Source:
    """The source photo (a file, or an image name of ``dataset``) framed like a dataset image, and its pose.

    A photo's pose is ``pose`` (any pose reference) or else the OpenPose file beside it
    (``<stem>_keypoints.json``); without either the pose is all missing and the photo is
    cropped (or padded) about its centre.
    """
    path = Path(ref)
    if not path.is_file():
        row = _dataset_row(ref, Path(dataset) if dataset is not None else None)
        if row is None:
            where = f" nor an image of the dataset {dataset}" if dataset is not None else ""
            raise DataError(f"{ref}: source photo not found{where}")
        if pose is not None:
            raise DataError(f"{ref} is a dataset image: its pose is its annotation row; drop --source-pose")
        found = [
            df.image_dir(dataset, s) / ref
            for s in df.SPLITS[::-1]
            if (df.image_dir(dataset, s) / ref).is_file()
        ]
        if not found:
            raise DataError(
                f"{ref}: annotated in {dataset} but its image is in neither {df.image_dir(dataset, 'test')} nor "
                f"{df.image_dir(dataset, 'train')}"
            )
        image_path = found[0]
        pose_of_image = Pose(row.astype(np.int32), ref, f"annotation of {ref} in {dataset}")
        return Source(_open_rgb(image_path, "the source image"), pose_of_image, image_path)
    photo = _open_rgb(path, "the source photo")
    size = (photo.size[1], photo.size[0])
    if pose is None:
        beside = path.with_name(f"{path.stem}_keypoints.json")
        pose = str(beside) if beside.is_file() else None
    if pose is None:
        framing = frame_for(size, None)
        missing = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)
        origin = f"no pose given for {path.name} (all keypoints missing); {framing.describe()}"
        return Source(framing.image(photo), Pose(missing, path.name, origin), path)
    found, framing = load_pose(
        pose, dataset=dataset, person=person, threshold=threshold, image_hint=path.name, photo_frame=size
    )
    if (
        framing is None
    ):  # a DeepFashion row: the photo is already in the dataset frame (stretched, as methods do)
        framing = frame_for(size, None)
        if (
            abs(size[0] * df.FRAME[1] - size[1] * df.FRAME[0]) > 0.02 * size[0] * df.FRAME[1]
        ):  # 2% off the aspect
            raise DataError(
                f"{pose}: a DeepFashion row is in the 256x176 frame, but {path} is {size[1]}x{size[0]} (WxH), "
                "not a dataset image of that aspect; give the photo's own pose (OpenPose or COCO)"
            )
        return Source(photo, Pose(found.keypoints, path.name, found.origin), path)
    return Source(framing.image(photo), Pose(found.keypoints, path.name, found.origin), path)


__all__ = ["DEFAULT_THRESHOLD", "Pose", "Source", "choose_person", "load_pose", "load_source"]
