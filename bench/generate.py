"""The generation engine: one PNG per test pair, resumable and shardable.

Guarantees (tested in ``tests/engine``):
- an image depends only on (method settings, seed, pair id, dataset): each pair gets its own
  generator from :func:`bench.seeding.pair_generators`, so batch size, number of processes
  and interruptions do not change a single byte;
- every PNG is written atomically, and a rerun checks each existing PNG (:func:`png_problem`:
  signature, size, every chunk's CRC, the final IEND) and regenerates only what is missing or
  damaged (a file truncated or emptied by a copy, a full disk or a hand edit), saying how many;
- ``manifest.json`` is written before the first image; a folder made with other settings is
  refused untouched;
- under ``accelerate launch`` each process takes every ``world``-th still-missing pair, the list
  being computed on every rank before any rank writes.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.api import Method
from bench.errors import ConfigError
from bench.io import TEMP_PREFIX, check_writable, remove_stale_temps, save_png_atomic, write_json_atomic
from bench.manifest import MANIFEST_NAME, check_output_folder, file_sha256, path_sha256, strings_sha256
from bench.seeding import pair_generators

log = logging.getLogger(__name__)


@dataclass
class GenerateOptions:
    """Everything ``pgpis generate`` takes; see ``pgpis generate --help`` for each option."""

    method: str
    dataset: Path
    out: Path
    split: str = "test"
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    seed: int = 3407
    batch_size: int = 8
    size: tuple[int, int] = (256, 176)
    num_workers: int = 0
    limit: int | None = None
    device: str = "cpu"
    progress: bool = True


@dataclass
class GenerateResult:
    out: Path
    num_pairs: int  # pairs selected (after --limit)
    num_existing: int  # already present before this run (skipped)
    num_generated: int  # written by this process
    rank: int = 0
    world: int = 1
    num_unavailable: int = 0  # pairs the method cannot produce (Method.unavailable), left out
    damaged: list[str] = field(default_factory=list)  # existing PNGs found damaged, regenerated (names)


class _Processes:
    """Rank/world/barrier: Accelerate's state when launched distributed, a single process otherwise."""

    def __init__(self, device: str) -> None:
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            # cpu=True makes Accelerate use gloo over CPU processes (it would look for GPUs otherwise).
            self.state = PartialState(cpu=torch.device(device).type == "cpu")
        self.rank = self.state.process_index if self.state else 0
        self.world = self.state.num_processes if self.state else 1
        self.is_main = self.rank == 0

    def device(self, requested: str) -> str:
        # Under a multi-GPU launch each rank must use its own GPU, whatever --device says.
        if self.state is not None and torch.device(requested).type != "cpu":
            return str(self.state.device)
        return requested

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def check_device(device: str) -> torch.device:
    """``--device`` as a torch device; a clear error for a typo or a GPU that is not there."""
    try:
        requested = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"--device {device!r} is not a torch device ({err}); use e.g. cpu or cuda"
        ) from None
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} asked for, but torch sees no CUDA GPU here; use --device cpu")
    return requested


def load_method_for(name: str, config: dict[str, Any], checkpoint: str | None, device: str) -> Method:
    """The installed method ``name``, built for ``device``; a bad config or checkpoint is a ConfigError."""
    from bench.registry import load_method

    try:
        return load_method(name, config, checkpoint=checkpoint, device=device)
    except ValueError as err:
        # Method.from_config signals a bad config/checkpoint with ValueError (bench.api).
        raise ConfigError(f"method {name!r} cannot be built: {err}") from None


def quantise(images: torch.Tensor, size: tuple[int, int]) -> list[np.ndarray]:
    """Resize each image to ``size`` (bicubic + antialias) when needed, clamp, round to uint8 HWC."""
    out = []
    for img in images.detach().float().cpu():
        if tuple(img.shape[-2:]) != tuple(size):
            # One image at a time so the result cannot depend on how pairs were batched.
            img = torch.nn.functional.interpolate(
                img[None], size=size, mode="bicubic", antialias=True, align_corners=False
            )[0]
        # numpy, single-threaded: torch's tiny-op thread pool is slow on a loaded CPU (measured 25 ms/op).
        arr = np.rint(np.clip(img.numpy(), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
        out.append(np.ascontiguousarray(arr.transpose(1, 2, 0)))
    return out


def check_method_output(images: Any, batch_ids: list[str], name: str) -> torch.Tensor:
    if (
        not isinstance(images, torch.Tensor)
        or images.ndim != 4
        or images.shape[0] != len(batch_ids)
        or images.shape[1] != 3
    ):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(
            f"method {name!r} returned {shape} for {len(batch_ids)} pairs; a Method.generate must return a "
            f"(B, 3, H, W) tensor in [0, 1] (fix the plugin)"
        )
    images = images.detach().float().cpu()
    if not np.isfinite(images.numpy()).all():
        raise ConfigError(
            f"method {name!r} returned NaN/inf pixels for pairs {batch_ids[:4]}; refusing to save them (fix the plugin or its checkpoint)"
        )
    return images


def generation_settings(method: Method, opts: GenerateOptions, dataset: Any, device: str) -> dict[str, Any]:
    """Every setting that changes pixels; two runs with equal settings write equal bytes."""
    dataset_json = Path(dataset.root) / "DATASET.json"
    return {
        "method": method.settings(),
        "checkpoint_sha256": path_sha256(opts.checkpoint) if opts.checkpoint else None,
        "seed": int(opts.seed),
        "output_size": [int(opts.size[0]), int(opts.size[1])],
        "split": opts.split,
        "device_type": torch.device(device).type,
        "dataset": {
            "annotations_sha256": file_sha256(dataset.annotations_path),
            # The synthetic generator's settings: a regenerated set with another seed has other pixels.
            "dataset_json_sha256": file_sha256(dataset_json) if dataset_json.exists() else None,
        },
    }


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_problem(path: str | os.PathLike, size: tuple[int, int]) -> str | None:
    """None if ``path`` is a complete 8-bit RGB PNG of ``size`` (H, W), else what is wrong with it.

    The file is read once and walked chunk by chunk: the signature, IHDR's size and pixel format,
    every chunk's CRC-32 and the final IEND. That catches an empty, truncated, overwritten or
    wrong-size file without inflating the pixels (a full decode costs ~10x more per image,
    measured in tests/faults/test_generate_faults.py); a PNG that passes has exactly the bytes its
    writer produced, and ours are written by PIL, so it decodes.
    """
    try:
        data = memoryview(Path(path).read_bytes())
    except OSError as err:
        return f"unreadable ({err.strerror})"
    if len(data) == 0:
        return "empty (0 bytes)"
    if bytes(data[:8]) != _PNG_SIGNATURE:
        return "not a PNG (bad signature)"
    pos, first = 8, True
    while True:
        if pos + 12 > len(data):
            return f"truncated at byte {len(data)} (no IEND chunk)"
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return f"truncated at byte {len(data)} (inside a {kind.decode('latin-1')} chunk)"
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return f"damaged (CRC mismatch in a {kind.decode('latin-1')} chunk at byte {pos})"
        if first:
            if kind != b"IHDR" or length != 13:
                return "damaged (no IHDR chunk first)"
            width, height, depth, colour = struct.unpack(">IIBB", data[pos + 8 : pos + 18])
            if (height, width) != tuple(size):
                return f"{height}x{width} instead of {size[0]}x{size[1]}"
            if (depth, colour) != (8, 2):
                return f"not 8-bit RGB (bit depth {depth}, colour type {colour})"
            first = False
        if kind == b"IEND":
            return None
        pos = end


def generate(opts: GenerateOptions, method: Method | None = None) -> GenerateResult:
    """Generate every missing ``<out>/<pair_id>.png`` of the split (see the module docstring)."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from bench.data.deepfashion import pair_id, validate_dataset
    from bench.data.loader import PairDataset, collate_pairs
    from bench.versions import package_versions

    if opts.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.limit is not None and opts.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {opts.limit}")
    check_device(opts.device)
    # A read-only, full or non-folder --out fails now, before the model is loaded.
    check_writable([Path(opts.out) / MANIFEST_NAME])
    procs = _Processes(opts.device)
    device = procs.device(opts.device)
    if method is None:
        method = load_method_for(opts.method, opts.config, opts.checkpoint, device)
    # Every missing or unannotated image is reported at once, before any output folder exists.
    dataset = validate_dataset(opts.dataset, opts.split)
    out = Path(opts.out)

    settings = generation_settings(method, opts, dataset, device)
    check_output_folder(out, settings)  # raises before anything is written

    indices = list(range(len(dataset.pairs)))[: opts.limit]
    ids = [pair_id(*dataset.pairs[i]) for i in indices]
    if len(set(ids)) != len(ids):
        raise ConfigError(
            f"{dataset.pairs_path}: duplicate pairs would write the same file twice; remove them"
        )
    # Computed on every rank before the barrier, i.e. before any rank writes an image. A damaged PNG
    # counts as absent: every rank sees the same file, so all agree on what is missing.
    size = (int(opts.size[0]), int(opts.size[1]))
    absent, damaged = [], []
    for i, pid in zip(indices, ids):
        path = out / f"{pid}.png"
        if not path.exists():
            absent.append((i, pid))
        elif (problem := png_problem(path, size)) is not None:
            absent.append((i, pid))
            damaged.append(pid)
            log.warning("%s: %s; it will be generated again", path, problem)
    unavailable = method.unavailable([dataset.pairs[i] for i, _ in absent]) if absent else {}
    missing = [i for i, pid in absent if pid not in unavailable]
    procs.barrier()
    if procs.is_main:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out)
        for legacy in out.glob(".*.png.*.png"):  # written by versions before bench.io's common prefix
            if not legacy.name.startswith(TEMP_PREFIX):
                legacy.unlink(missing_ok=True)
        for pid in damaged:  # also those of pairs the method cannot produce: never leave a damaged image
            (out / f"{pid}.png").unlink(missing_ok=True)
        write_json_atomic(
            out / MANIFEST_NAME,
            {
                "settings": settings,
                "method": {
                    "name": method.info.name,
                    "description": method.info.description,
                    "paper": method.info.paper,
                },
                "dataset": str(opts.dataset),  # as given: an absolute path would differ per clone
                "split": opts.split,
                "pairs_sha256": strings_sha256(ids),
                "num_pairs": len(ids),
                "limit": opts.limit,
                # Packages and lock, not the commit: the same run from another clone or commit writes
                # the same manifest (and so the same dvc.lock hash); git's history holds the commit.
                "versions": package_versions(),
                # Only when there are some: every model's manifest stays as it was.
                **({"unavailable": unavailable} if unavailable else {}),
            },
        )
    procs.barrier()

    mine = missing[procs.rank :: procs.world]
    spec = method.inputs
    loader = DataLoader(
        PairDataset(dataset, spec, indices=mine),
        batch_size=opts.batch_size,
        shuffle=False,
        num_workers=opts.num_workers,
        collate_fn=collate_pairs,
    )
    done = 0
    with tqdm(
        total=len(mine),
        desc=f"generate {method.info.name} [{procs.rank + 1}/{procs.world}]",
        unit="img",
        disable=not opts.progress or None,
        position=procs.rank,
    ) as bar:
        with torch.inference_mode():
            for batch in loader:
                gens = pair_generators(opts.seed, batch.pair_ids, device=method.device)
                images = check_method_output(
                    method.generate(batch.to(method.device), gens), batch.pair_ids, method.info.name
                )
                for pid, img in zip(batch.pair_ids, quantise(images, size)):
                    save_png_atomic(out / f"{pid}.png", img)
                done += len(batch)
                bar.update(len(batch))
    procs.barrier()
    existing = len(ids) - len(missing) - len(unavailable)
    result = GenerateResult(
        out,
        len(ids),
        existing,
        done,
        rank=procs.rank,
        world=procs.world,
        num_unavailable=len(unavailable),
        damaged=damaged,
    )
    log.debug(
        "%s: %d pairs, %d already present, %d generated by process %d/%d",
        out, result.num_pairs, result.num_existing, result.num_generated, procs.rank + 1, procs.world,
    )  # fmt: skip
    return result
