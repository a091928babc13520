"""Training settings of ``pgpis train --method cfld`` (one YAML file, see configs/train_*.yaml).

Defaults are the official recipe (``defaults/deepfashion.py`` + ``pose_transfer_train.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import ConfigError


@dataclass
class TrainSettings:
    # The model: a CFLDConfig.from_dict mapping ({"base": "paper"|"tiny", ...overrides}).
    model: dict[str, Any] = field(default_factory=lambda: {"base": "paper"})
    # The diffusion space: {"kind": "sd_vae", "vae": hub id or folder} or {"kind": "pixel", "factor": f}.
    latent: dict[str, Any] = field(
        default_factory=lambda: {"kind": "sd_vae", "vae": "stable-diffusion-v1-5/stable-diffusion-v1-5"}
    )
    # Base weights: the SD-1.5 UNet (hub id or folder; null = random init) and the Swin-B ImageNet file.
    init_unet: str | None = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    init_swin: str | None = "pretrained_models/swin/swin_base_patch4_window12_384_22kto1k.pth"
    # Sampling settings stored with the final model (SamplingSettings.from_dict).
    sampling: dict[str, Any] = field(default_factory=dict)
    seed: int = 3407  # ACCELERATE.SEED
    batch_size: int = 224  # INPUT.BATCH_SIZE, global; per process = batch // processes // accumulation
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "fp16"  # fp16 | bf16 | no (on CPU: bf16 autocast runs, fp16 -> no, warned)
    allow_tf32: bool = True
    gradient_checkpointing: bool = True  # UNet only, as the official code
    epochs: int = 100
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    lr: float = 1e-4
    warmup_steps: int = 1000
    warmup_rate: float = 0.1
    decay_rate: float = 0.1
    decay_epochs: list[int] = field(default_factory=lambda: [50])
    max_grad_norm: float | None = None  # the official code does not clip
    cubic_sampling: bool = True
    # The UNet's training target: "epsilon" (official), "sample" (x0) or "v_prediction". Stored in
    # the model's pipeline.json so sampling uses the matching scheduler parametrisation.
    prediction_type: str = "epsilon"
    # Exponential moving average of the trainable weights (null = off, as the official recipe).
    # The final model is the EMA copy; checkpoints hold both, so resume stays exact.
    ema_decay: float | None = None
    flip_condition: bool = True  # RandomHorizontalFlip(0.5) of the condition image only
    checkpoint_every: int = 2000  # optimizer steps between accelerator.save_state
    keep_checkpoints: int = 2
    log_every: int = 10
    num_workers: int = 8
    # CPU threads for torch (null = torch's default). On a small shared CPU, 1 thread per process
    # avoids OpenMP oversubscription, which made tiny-model steps 10-50x slower here.
    cpu_threads: int | None = None
    # CPU kernels pinned for bit-reproducible training on any x86-64 CPU with AVX2 ("avx2"), or null
    # for torch's own choice by CPU (methods/cfld/cpu_determinism.py). CPU training always runs with
    # deterministic algorithms; this also fixes which ones.
    cpu_kernels: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "CFLD train config") -> TrainSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
        s = cls(**d)
        s.check(where)
        return s

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainSettings:
        from methods.cfld.config import load_yaml_mapping

        hint = "pass e.g. methods/cfld/configs/train_tiny.yaml"
        return cls.from_dict(load_yaml_mapping(path, "CFLD train config", hint), where=str(path))

    def check(self, where: str) -> None:
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(
                f"{where}: mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}"
            )
        for name in ("batch_size", "gradient_accumulation_steps", "epochs", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{where}: {name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and int(self.max_steps) < 1:
            raise ConfigError(f"{where}: max_steps must be >= 1 or null, got {self.max_steps}")
        if self.prediction_type not in ("epsilon", "sample", "v_prediction"):
            raise ConfigError(
                f"{where}: prediction_type must be epsilon, sample or v_prediction, got {self.prediction_type!r}"
            )
        if self.ema_decay is not None and not 0.0 < float(self.ema_decay) < 1.0:
            raise ConfigError(f"{where}: ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if "prediction_type" in (self.sampling or {}):
            raise ConfigError(
                f"{where}: set prediction_type at the top level of the train config, not under sampling"
            )
        from methods.cfld.cpu_determinism import check_kernels

        check_kernels(self.cpu_kernels, where)
        if self.warmup_steps < 1:
            raise ConfigError(f"{where}: warmup_steps must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def lr_at(step: int, s: TrainSettings, steps_per_epoch: int) -> float:
    """The official LinearWarmupMultiStepDecay LR for optimizer step ``step`` (0-based).

    Warm-up from ``warmup_rate * lr`` reaching ``lr`` at step ``warmup_steps - 1``, then x``decay_rate``
    at each decay epoch (converted to steps with ``steps_per_epoch``).
    """
    if step < s.warmup_steps:
        alpha = (step + 1) / s.warmup_steps
        return s.lr * (s.warmup_rate + (1.0 - s.warmup_rate) * alpha)
    passed = sum(1 for e in s.decay_epochs if step >= e * steps_per_epoch)
    return s.lr * s.decay_rate**passed


__all__ = ["TrainSettings", "lr_at"]
