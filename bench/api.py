"""The plugin contract: the only module a method plugin needs to import.

A method is a subclass of :class:`Method`, registered under the entry-point group
``pgpis_bench.methods`` (``name = "package.module:Class"``). The engine builds it with
:meth:`Method.from_config`, asks it which inputs it needs (:attr:`Method.inputs`), feeds it
:class:`PairBatch` objects and saves what :meth:`Method.generate` returns.

Conventions shared by every method:
- images are float tensors in [0, 1], shape (B, 3, H, W), RGB;
- keypoints are (B, 18, 2) float tensors of (y, x) in OpenPose COCO-18 order, in the frame
  given by ``PairBatch.keypoint_frame`` (DeepFashion annotations: 256x176, H x W); a missing
  point is (-1, -1);
- randomness comes only from the per-pair generators passed to ``generate`` (one per pair,
  seeded from (global seed, pair id)), so outputs do not depend on batching or sharding.

A metric plugin declares a :class:`Metric` (``bench.metrics.declaration``) and registers it under the
entry-point group ``pgpis_bench.metrics`` (``metric_name = "package.module:ATTRIBUTE"``); a
protocol, or ``pgpis evaluate --metrics``, then names it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch

from bench.errors import BenchError, ConfigError, DataError, MissingWeightError
from bench.io import TEMP_PREFIX, atomic_path, write_json_atomic
from bench.metrics.declaration import (
    FEATURES,
    HIGHER,
    LOWER,
    PER_PAIR,
    PIXELS,
    SET_LEVEL,
    STATS,
    VECTORS,
    Metric,
)
from bench.pair_names import PLACEHOLDER_HELP, format_names, pair_fields
from bench.seeding import pair_seed

if TYPE_CHECKING:  # at run time these load lazily (module __getattr__ below)
    from bench.data.deepfashion import DeepFashionDataset, image_tensor, load_image
    from bench.data.loader import PairDataset
    from bench.data.posemaps import pose_map
    from bench.versions import package_versions

# Pose-map kinds the engine can build for a method (see bench.data.posemaps):
#  "heatmaps18": 18 Gaussian heatmaps (sigma 6, as GFLA/DPTN/CFLD);
#  "skeleton3":  3-channel RGB skeleton of the 17 CFLD bones, /255;
#  "cfld21":     skeleton3 followed by heatmaps18, exactly as the official CFLD dataset code.
PoseMapKind = Literal["heatmaps18", "skeleton3", "cfld21"]

# The DeepFashion annotation frame (H, W) in which the split's keypoints are given.
ANNOTATION_FRAME: tuple[int, int] = (256, 176)


@dataclass(frozen=True)
class InputSpec:
    """What a method wants the engine to load for each pair.

    ``image_size`` (H, W) is the size of ``PairBatch.source_image`` (and of ``target_image``
    in training), resized from the dataset image with bicubic + antialias, aspect not kept
    (the CFLD convention). ``pose_size`` and ``pose_kind`` select the pose maps; ``None``
    means the method only needs keypoints.
    """

    image_size: tuple[int, int] = (256, 176)
    pose_kind: PoseMapKind | None = None
    pose_size: tuple[int, int] | None = None
    with_target_image: bool = False  # training needs the target; generation never does


@dataclass
class PairBatch:
    """A batch of (source -> target pose) pairs.

    ``pair_ids`` are ``<from-stem>_2_<to-stem>``, the file stems the engine writes.
    Fields a method did not ask for are ``None``.
    """

    pair_ids: list[str]
    source_names: list[str]
    target_names: list[str]
    source_image: torch.Tensor  # (B,3,H,W) in [0,1]
    source_keypoints: torch.Tensor  # (B,18,2) (y,x) in keypoint_frame, -1 missing
    target_keypoints: torch.Tensor  # (B,18,2)
    keypoint_frame: tuple[int, int] = ANNOTATION_FRAME
    source_pose: torch.Tensor | None = None  # (B,C,h,w) pose maps of the source keypoints
    target_pose: torch.Tensor | None = None  # (B,C,h,w) pose maps of the target keypoints
    target_image: torch.Tensor | None = None  # (B,3,H,W), training only

    def __len__(self) -> int:
        return len(self.pair_ids)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> PairBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            t = t.to(device)
            return t.to(dtype) if dtype is not None and t.is_floating_point() else t

        return PairBatch(
            pair_ids=self.pair_ids,
            source_names=self.source_names,
            target_names=self.target_names,
            source_image=move(self.source_image),
            source_keypoints=self.source_keypoints.to(device),
            target_keypoints=self.target_keypoints.to(device),
            keypoint_frame=self.keypoint_frame,
            source_pose=move(self.source_pose),
            target_pose=move(self.target_pose),
            target_image=move(self.target_image),
        )


@dataclass
class MethodInfo:
    """Facts about a method shown by ``pgpis methods`` and stored in every manifest."""

    name: str
    description: str
    paper: str | None = None
    trainable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Method(abc.ABC):
    """Base class of every pose-guided synthesis method.

    Subclasses set :attr:`info`, may override :attr:`inputs`, and implement :meth:`generate`.
    ``config`` is a plain dict (from ``params.yaml`` / ``--config``); ``checkpoint`` is a path
    to the method's weights (file or folder) or ``None`` for methods without weights.
    """

    info: ClassVar[MethodInfo]

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        device: str | torch.device = "cpu",
    ) -> Method:
        """Build the method from its config and (optionally) its checkpoint."""
        if checkpoint is not None:
            raise ConfigError(f"method {cls.info.name!r} takes no checkpoint, got {checkpoint!r}")
        return cls(config)

    @property
    def inputs(self) -> InputSpec:
        return InputSpec()

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def settings(self) -> dict[str, Any]:
        """Every setting that changes the output; written into the generation manifest.

        An output folder made with different settings is refused rather than mixed.
        """
        return {"method": self.info.name, "config": self.config}

    def unavailable(self, pairs: list[tuple[str, str]]) -> dict[str, str]:
        """Pairs (source name, target name) this method cannot produce: pair id -> why.

        The engine leaves them out, lists them under ``unavailable`` in the manifest and reports
        their number; ``pgpis evaluate`` then counts them as missing (refused unless
        ``--allow-missing``). A model generates every pair, so the default is none; a method that
        reads published outputs (``released``) reports the pairs the release lacks.
        """
        return {}

    @abc.abstractmethod
    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        """Return (B, 3, H, W) images in [0, 1] for the batch's target poses.

        ``generator`` holds one generator per pair; use it for every random draw. The engine
        resizes the result to the requested output size (bicubic + antialias) when it differs,
        then quantises to uint8 PNG.
        """

    def train(self, args: Any) -> None:  # pragma: no cover - optional
        """Train the method (optional); ``args`` come from ``pgpis train``."""
        raise NotImplementedError(f"method {self.info.name!r} cannot be trained")


# Engine services a plugin may use, re-exported so that plugins import this module only (the rest
# of bench/ can change without breaking them). The data readers load lazily: bench.data.loader
# itself imports this module.
_LAZY = {
    "DeepFashionDataset": "bench.data.deepfashion",
    "load_image": "bench.data.deepfashion",
    # An in-memory image (PIL) -> tensor exactly as load_image treats a file.
    "image_tensor": "bench.data.deepfashion",
    "PairDataset": "bench.data.loader",
    # (18, 2) keypoints -> the pose maps the engine builds (heatmaps18 | skeleton3 | cfld21).
    "pose_map": "bench.data.posemaps",
    # The installed packages' versions and the environment lock they came from (a training's provenance).
    "package_versions": "bench.versions",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench.api' has no attribute {name!r}")


__all__ = [
    "ANNOTATION_FRAME",
    "BenchError",
    "ConfigError",
    "DataError",
    "DeepFashionDataset",
    "FEATURES",
    "HIGHER",
    "LOWER",
    "Metric",
    "PER_PAIR",
    "PIXELS",
    "SET_LEVEL",
    "STATS",
    "VECTORS",
    "InputSpec",
    "Method",
    "MethodInfo",
    "MissingWeightError",
    "PairBatch",
    "PairDataset",
    "PLACEHOLDER_HELP",
    "PoseMapKind",
    "TEMP_PREFIX",
    "atomic_path",
    "format_names",
    "image_tensor",
    "load_image",
    "package_versions",
    "pair_fields",
    "pair_seed",
    "pose_map",
    "write_json_atomic",
]
