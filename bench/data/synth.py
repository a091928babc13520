"""The embedded synthetic dataset: persons rendered at real DeepFashion poses, in DeepFashion's format.

The output root is laid out exactly like a prepared DeepFashion root (``docs/architecture.md``), so
every reader, method and metric runs on it unchanged. Everything is derived from one seed through
``numpy.random.default_rng([seed, ...])`` streams keyed by (split, identity, image), so the files
are byte-identical for the same settings whatever else changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.data import deepfashion as df
from bench.data.synth_render import Identity, background, render_person, sample_identity, view_of
from bench.errors import ConfigError, DataError
from bench.io import atomic_dir, atomic_path, write_json_atomic, write_text_atomic

DEFAULT_POSES = (
    Path(__file__).resolve().parents[2] / "datasets" / "poses" / "fasion-resize-annotation-test.csv"
)
TORSO = (2, 5, 8, 11)  # the Def-GAN pair rule: shoulders and hips visible
FORMAT_VERSION = 1
_SPLIT_KEY = {"train": 1, "test": 2}  # rng stream and id prefix per split: disjoint identities


@dataclass(frozen=True)
class SynthSettings:
    """Every setting that changes a byte of the synthetic dataset (written to ``DATASET.json``)."""

    seed: int = 0
    train_identities: int = 400
    test_identities: int = 12
    images_per_identity: int = 4
    size: tuple[int, int] = (256, 176)
    jpeg_quality: int = 95

    def check(self) -> None:
        if self.train_identities < 1 or self.test_identities < 1:
            raise ConfigError("synth: --train-identities and --test-identities must be at least 1")
        if not 2 <= self.images_per_identity <= 9:
            raise ConfigError("synth: --images-per-identity must be between 2 (one pair) and 9")
        if min(self.size) < 16 or max(self.size) > 2048:
            raise ConfigError(f"synth: --size {self.size[0]}x{self.size[1]} is outside 16..2048 pixels")
        if not 50 <= self.jpeg_quality <= 100:
            raise ConfigError("synth: --jpeg-quality must be between 50 and 100")


@dataclass(frozen=True)
class SynthImage:
    name: str
    keypoints: np.ndarray  # (18, 2) int (y, x) in the 256x176 frame
    background: tuple[int, int, int]


@dataclass(frozen=True)
class SynthPerson:
    split: str
    index: int
    identity: Identity
    images: tuple[SynthImage, ...]


def load_pose_pool(path: str | os.PathLike = DEFAULT_POSES) -> list[np.ndarray]:
    """Real poses with the four torso points visible, in file order."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path}: pose file not found; it ships in the repository under datasets/poses/ "
            "(pass --poses to use another copy of fasion-resize-annotation-test.csv)"
        )
    ann = df.read_annotations(path)
    return [kps for kps in ann.values() if (kps[list(TORSO), 0] >= 0).all()]


def plan(settings: SynthSettings, poses: list[np.ndarray]) -> list[SynthPerson]:
    """Who is rendered at which pose: cheap, so tests can rebuild it to re-render any image."""
    settings.check()
    # Train and test draw from disjoint halves of the pose pool, so no pose is shared across splits.
    halves = {"train": poses[0::2], "test": poses[1::2]}
    people = []
    for split, count in (("train", settings.train_identities), ("test", settings.test_identities)):
        pool = halves[split]
        if len(pool) < settings.images_per_identity:
            raise DataError(
                f"synth: only {len(pool)} usable poses for {split}; need {settings.images_per_identity}"
            )
        for i in range(count):
            rng = np.random.default_rng([settings.seed, _SPLIT_KEY[split], i])
            identity = sample_identity(rng)
            picks = rng.choice(len(pool), size=settings.images_per_identity, replace=False)
            # Invented item ids start with 9 (real ones are below 00010000) and encode the split.
            item = f"9{_SPLIT_KEY[split]}{i:06d}"
            images = []
            for k, pick in enumerate(picks, start=1):
                kps = pool[int(pick)]
                name = f"fashion{identity.gender}{identity.category}id{item}01_{k}{view_of(kps)}.jpg"
                images.append(SynthImage(name, kps, background(rng)))
            people.append(SynthPerson(split, i, identity, tuple(images)))
    return people


def _annotation_csv(images: list[SynthImage]) -> str:
    # The original writer's form (pose-gan compute_coordinates.py): "name: [y...]: [x...]".
    rows = ["name:keypoints_y:keypoints_x"]
    rows += [f"{im.name}: {im.keypoints[:, 0].tolist()}: {im.keypoints[:, 1].tolist()}" for im in images]
    return "\n".join(rows) + "\n"


def _pairs_csv(people: list[SynthPerson]) -> str:
    rows = ["from,to"]
    for person in people:
        rows += [f"{a.name},{b.name}" for a in person.images for b in person.images if a is not b]
    return "\n".join(rows) + "\n"


def _save_jpeg(path: Path, pixels: np.ndarray, quality: int) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        # No EXIF, no optimisation pass: the same pixels always give the same bytes.
        Image.fromarray(pixels).save(tmp, format="JPEG", quality=quality, subsampling=0)


def _progress(items: list[SynthPerson]) -> Iterator[SynthPerson]:
    from tqdm import tqdm

    yield from tqdm(items, desc="synth", unit="identity")


def write_dataset(root: Path, settings: SynthSettings, poses_path: Path = DEFAULT_POSES) -> dict:
    """Write the whole dataset into ``root`` (an empty folder); returns the DATASET.json content."""
    poses = load_pose_pool(poses_path)
    people = plan(settings, poses)
    counts = {}
    for split in ("train", "test"):
        members = [p for p in people if p.split == split]
        images = [im for p in members for im in p.images]
        out_dir = df.image_dir(root, split)
        out_dir.mkdir(parents=True, exist_ok=True)
        for person in _progress(members):
            for im in person.images:  # streamed: one image in memory at a time
                pixels = render_person(person.identity, im.keypoints, settings.size, im.background)
                _save_jpeg(out_dir / im.name, pixels, settings.jpeg_quality)
        write_text_atomic(df.list_file(root, split), "".join(f"{im.name}\n" for im in images))
        write_text_atomic(df.annotation_file(root, split), _annotation_csv(images))
        pairs = _pairs_csv(members)
        write_text_atomic(df.pairs_file(root, split), pairs)
        counts[split] = {"identities": len(members), "images": len(images), "pairs": pairs.count("\n") - 1}
    info = {
        "dataset": "pgpis-synthetic",
        "format_version": FORMAT_VERSION,
        "settings": asdict(settings),
        "seed": settings.seed,
        "counts": counts,
        "poses": {"file": poses_path.name, "sha256": hashlib.sha256(poses_path.read_bytes()).hexdigest()},
        "identities": {
            f"{p.split}/{p.index}": {"names": [im.name for im in p.images], **p.identity.to_dict()}
            for p in people
        },
    }
    write_json_atomic(root / "DATASET.json", info)
    return info


def _existing_settings(out: Path) -> dict | None:
    import json

    meta = out / "DATASET.json"
    if not meta.exists():
        return None
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{meta}: unreadable ({err}); remove {out} or choose another --out") from None


def synthesize(
    out: str | os.PathLike, settings: SynthSettings, poses_path: str | os.PathLike = DEFAULT_POSES
) -> dict:
    """Create (or re-create) the synthetic dataset at ``out`` as a whole.

    It is built in a temporary sibling folder and renamed into place at the end, so an interrupted
    run leaves the previous dataset untouched. A folder holding anything other than a synthetic
    dataset with the same settings is refused rather than overwritten.
    """
    settings.check()
    out = Path(out)
    poses_path = Path(poses_path)
    if out.exists():
        existing = _existing_settings(out) if out.is_dir() else None
        if existing is None and (not out.is_dir() or any(out.iterdir())):
            raise ConfigError(f"{out}: exists and is not a synthetic dataset; choose an empty or new --out")
        if existing is not None and existing.get("settings") != _jsonable(asdict(settings)):
            raise ConfigError(
                f"{out}: holds a synthetic dataset made with different settings "
                f"({existing.get('settings')}); remove it or choose another --out"
            )
    with atomic_dir(out) as tmp:
        info = write_dataset(tmp, settings, poses_path)
    return info


def _jsonable(obj):
    """Settings as they read back from JSON (tuples become lists)."""
    import json

    return json.loads(json.dumps(obj))
