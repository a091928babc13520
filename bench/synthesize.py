"""One source photo in one or more target poses, with any installed method (``pgpis synthesize``).

The pair goes through the same plugin interface as a dataset split: the source photo is framed like
a dataset image (bench.poses.framing), every pose is mapped into the 256x176 annotation frame, the
method gets a :class:`bench.api.PairBatch` built as the engine builds one from the dataset (same
resize, same pose maps), and each pair's randomness comes from the generator seeded with (seed,
pair id), as in ``pgpis generate``: a pair of dataset images gives the very image ``generate``
writes for it. Every image is computed before the first file is written, and each file is written
atomically; an existing file is refused unless ``overwrite``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import ConfigError, DataError
from bench.io import save_png_atomic, write_json_atomic

SEQUENCE_RECORD = "synthesize.json"


@dataclass
class SynthesizeOptions:
    """Everything ``pgpis synthesize`` takes; see ``pgpis synthesize --help``."""

    method: str
    source: str
    targets: list[str]
    out: Path | None = None
    source_pose: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    dataset: Path | None = None
    seed: int = 3407
    steps: int | None = None
    size: tuple[int, int] = (256, 176)
    person: int | None = None
    source_person: int | None = None
    threshold: float = 0.1
    pose_frame: tuple[int, int] | None = None
    preview: bool = False
    sheet: Path | None = None
    batch_size: int = 8
    device: str = "cpu"
    overwrite: bool = False
    progress: bool = True


@dataclass
class SynthesizeResult:
    images: list[Path]  # one per target pose, in the order given
    previews: list[Path]
    sheet: Path | None
    pair_ids: list[str]
    origins: dict[str, str]  # what each pose was read from and how it was mapped


def expand_targets(targets: list[str]) -> list[str]:
    """A folder stands for its ``*.json`` pose files in name order (e.g. OpenPose's per-frame files)."""
    out: list[str] = []
    for t in targets:
        p = Path(t)
        if p.is_dir():
            files = sorted(str(f) for f in p.glob("*.json"))
            if not files:
                raise DataError(f"{p}: a target-pose folder must hold pose files (*.json); it holds none")
            out += files
        else:
            out.append(t)
    return out


def output_paths(opts: SynthesizeOptions, pair_ids: list[str], source_stem: str) -> list[Path]:
    """One target: ``--out`` is the PNG (default ``<pair id>.png``) or a folder for it; several: a folder."""
    out = opts.out
    if len(pair_ids) == 1 and (out is None or out.suffix.lower() == ".png"):
        return [out if out is not None else Path(f"{pair_ids[0]}.png")]
    folder = out if out is not None else Path(f"{source_stem}_poses")
    if folder.suffix.lower() == ".png":
        raise ConfigError(
            f"--out {folder}: {len(pair_ids)} target poses make {len(pair_ids)} images; give a folder"
        )
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} exists and is not a folder")
    return [folder / f"{pid}.png" for pid in pair_ids]


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    there = [str(p) for p in paths if p.exists()]
    if there and not overwrite:
        raise ConfigError(
            f"{len(there)} output file(s) exist and would be replaced: {', '.join(there[:5])}; "
            "pass --overwrite or another --out"
        )


def _check_steps(method: Any, steps: int) -> None:
    """``--steps`` sets the method config's ``num_inference_steps``; refuse it where nothing reads it."""

    def found(d: Any) -> bool:
        if isinstance(d, dict):
            return any((k == "num_inference_steps" and v == steps) or found(v) for k, v in d.items())
        return False

    # (the "config" entry echoes the user's config, which now holds the key whether or not it is used)
    if not found({k: v for k, v in method.settings().items() if k != "config"}):
        raise ConfigError(
            f"--steps: method {method.info.name!r} has no sampling steps (its settings do not name "
            "num_inference_steps); drop --steps"
        )


def _check_available(method: Any, pairs: list[tuple[str, str]], ids: list[str]) -> None:
    hint = (
        f"method {method.info.name!r} can only produce pairs it has images for; a method that reads "
        "published outputs (released) has the dataset's test pairs only: name both images as dataset "
        "images with --dataset"
    )
    try:
        lacking = method.unavailable(pairs)
    except DataError as err:
        raise ConfigError(f"{err}\n{hint}") from None
    if lacking:
        pid = next(p for p in ids if p in lacking)
        raise ConfigError(f"pair {pid}: {lacking[pid]}\n{hint}")


def _items(source: Any, poses: list[Any], spec: Any) -> list[dict[str, Any]]:
    """The engine's per-pair items (bench.data.loader.PairDataset) for the source and each pose."""
    from bench.data.deepfashion import image_tensor, pair_id
    from bench.data.loader import pose_tensor

    image = image_tensor(source.image, spec.image_size)
    src_kps = source.pose.keypoints
    src_map = pose_tensor(src_kps, spec.pose_kind, spec.pose_size) if spec.pose_kind else None
    items = []
    for pose in poses:
        items.append(
            {
                "pair_id": pair_id(source.pose.name, pose.name),
                "source_name": source.pose.name,
                "target_name": pose.name,
                "source_image": image,
                "source_keypoints": torch.from_numpy(src_kps.astype(np.float32)),
                "target_keypoints": torch.from_numpy(pose.keypoints.astype(np.float32)),
                "source_pose": src_map,
                "target_pose": pose_tensor(pose.keypoints, spec.pose_kind, spec.pose_size)
                if spec.pose_kind
                else None,
                "target_image": None,
            }
        )
    return items


def _panel(image: torch.Tensor | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from bench.generate import quantise

    t = torch.as_tensor(image) if not isinstance(image, torch.Tensor) else image
    return quantise(t[None].float(), size)[0]


def preview_strip(source: np.ndarray, pose: np.ndarray, result: np.ndarray) -> np.ndarray:
    """source | target pose | result, side by side (HxWx3 uint8 panels of one size)."""
    return np.concatenate([source, pose, result], axis=1)


def contact_sheet(source: np.ndarray, poses: list[np.ndarray], results: list[np.ndarray]) -> np.ndarray:
    """Top row: the source, then each target pose; bottom row: white, then each result."""
    blank = np.full_like(source, 255)
    top = np.concatenate([source, *poses], axis=1)
    bottom = np.concatenate([blank, *results], axis=1)
    return np.concatenate([top, bottom], axis=0)


def synthesize(opts: SynthesizeOptions) -> SynthesizeResult:
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from bench.data.deepfashion import image_tensor, pair_id
    from bench.data.loader import collate_pairs, pose_tensor
    from bench.generate import check_device, check_method_output, load_method_for, quantise
    from bench.poses import load_pose, load_source
    from bench.seeding import pair_generators

    if not opts.targets:
        raise ConfigError("give at least one --target-pose")
    if opts.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.steps is not None and opts.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {opts.steps}")
    if not 0.0 <= opts.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {opts.threshold}")
    check_device(opts.device)
    # Inputs first: a bad pose file fails in a second, before a model is loaded.
    source = load_source(
        opts.source,
        pose=opts.source_pose,
        dataset=opts.dataset,
        person=opts.source_person,
        threshold=opts.threshold,
    )
    poses = [
        load_pose(
            t, dataset=opts.dataset, person=opts.person, threshold=opts.threshold, frame=opts.pose_frame
        )[0]
        for t in expand_targets(opts.targets)
    ]
    pairs = [(source.pose.name, p.name) for p in poses]
    ids = [pair_id(*pair) for pair in pairs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(
            f"target poses give the same pair twice ({', '.join(duplicates)}); name each pose once"
        )
    paths = output_paths(opts, ids, Path(source.pose.name).stem)
    previews = [p.with_name(f"{p.stem}.preview.png") for p in paths] if opts.preview else []
    _refuse_existing(paths + previews + ([opts.sheet] if opts.sheet else []), opts.overwrite)

    config = dict(opts.config)
    if opts.steps is not None:
        config["num_inference_steps"] = int(opts.steps)
    method = load_method_for(opts.method, config, opts.checkpoint, opts.device)
    if opts.steps is not None:
        _check_steps(method, int(opts.steps))
    _check_available(method, pairs, ids)

    spec = method.inputs
    loader = DataLoader(_items(source, poses, spec), batch_size=opts.batch_size, collate_fn=collate_pairs)
    size = (int(opts.size[0]), int(opts.size[1]))
    results: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in tqdm(
            loader, desc=f"synthesize {method.info.name}", unit="batch", disable=not opts.progress or None
        ):
            gens = pair_generators(opts.seed, batch.pair_ids, device=method.device)
            images = check_method_output(
                method.generate(batch.to(method.device), gens), batch.pair_ids, method.info.name
            )
            results += quantise(images, size)

    src_panel = _panel(image_tensor(source.image, size), size)
    pose_panels = (
        [_panel(pose_tensor(p.keypoints, "skeleton3", size), size) for p in poses]
        if (opts.preview or opts.sheet)
        else []
    )
    for path, img in zip(paths, results):
        save_png_atomic(path, img)
    for path, pose_img, img in zip(previews, pose_panels, results):
        save_png_atomic(path, preview_strip(src_panel, pose_img, img))
    if opts.sheet is not None:
        save_png_atomic(opts.sheet, contact_sheet(src_panel, pose_panels, results))
    origins = {"source": source.pose.origin, **{pid: p.origin for pid, p in zip(ids, poses)}}
    if len(paths) > 1:
        write_json_atomic(
            paths[0].parent / SEQUENCE_RECORD,
            {
                "method": method.settings(),
                "checkpoint": opts.checkpoint,
                "seed": int(opts.seed),
                "output_size": list(size),
                "source": str(source.path),
                "pairs": [
                    {"pair_id": pid, "image": p.name, "pose": o}
                    for pid, p, o in zip(ids, paths, [x.origin for x in poses])
                ],
                "source_pose": source.pose.origin,
            },
        )
    return SynthesizeResult(paths, previews, opts.sheet, ids, origins)
