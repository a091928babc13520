"""CFLD sampling: condition image + target pose map -> image at the diffusion size.

One sampling step is ONE batched UNet call over all guidance branches (see :mod:`guidance`), as in
the official ``sample()``. Randomness comes only from the per-pair generators: the initial noise
and every ancestral (DDPM) noise draw of pair i use generator i, so an image does not depend on
the batch it was generated in.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from methods.cfld import winograd as winograd_conv
from methods.cfld.cpu_support import available_memory_bytes
from methods.cfld.guidance import (
    DEFAULT_GUIDANCE,
    GuidanceScales,
    batch_conditions,
    check_guidance_type,
    combine,
)
from methods.cfld.schedulers import DEFAULT_SCHEDULER, DEFAULT_STEPS, fresh_copy, make_scheduler
from methods.cfld.vae import LatentCodec

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class SamplingSettings:
    """Every setting that changes the sampled pixels (written into generation manifests)."""

    scheduler: str = DEFAULT_SCHEDULER
    num_inference_steps: int = DEFAULT_STEPS
    guidance_type: str = DEFAULT_GUIDANCE
    scales: GuidanceScales = field(default_factory=GuidanceScales)
    diffusion_size: tuple[int, int] = (512, 512)  # INPUT.GT.IMG_SIZE: the image the UNet denoises
    dtype: str = "fp32"  # autocast dtype: fp32 (CPU default), fp16 or bf16
    # Clip each step's x0 estimate to [-1,1] (DDPM/DDIM only). Off for SD latents (official);
    # on for pixel-space models, whose data lie in [-1,1] (as in the original pixel DDPM).
    clip_sample: bool = False
    # What the UNet predicts: "epsilon" (CFLD, SD-1.5), "sample" (x0) or "v_prediction". A property
    # of how the model was trained (written by `pgpis train` into pipeline.json), not a user knob.
    prediction_type: str = "epsilon"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplingSettings:
        from bench.api import ConfigError

        d = dict(d or {})
        known = {
            "scheduler",
            "num_inference_steps",
            "guidance_type",
            "scales",
            "diffusion_size",
            "dtype",
            "clip_sample",
            "prediction_type",
        }
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown CFLD sampling setting(s) {unknown}; known: {sorted(known)}")
        scales = GuidanceScales(**(d.pop("scales", None) or {}))
        if "diffusion_size" in d:
            d["diffusion_size"] = tuple(int(v) for v in d["diffusion_size"])
        s = cls(scales=scales, **d)
        check_guidance_type(s.guidance_type)
        make_scheduler(s.scheduler)  # validates the name
        if s.clip_sample and s.scheduler not in ("ddpm", "ddim"):
            raise ConfigError(
                f"CFLD clip_sample works with the ddpm and ddim schedulers, not {s.scheduler!r}"
            )
        if s.prediction_type not in PREDICTION_TYPES:
            raise ConfigError(
                f"CFLD prediction_type must be one of {', '.join(PREDICTION_TYPES)}, got {s.prediction_type!r}"
            )
        if s.dtype not in DTYPES:
            raise ConfigError(f"CFLD dtype must be one of {', '.join(DTYPES)}, got {s.dtype!r}")
        if int(s.num_inference_steps) < 1:
            raise ConfigError(f"CFLD num_inference_steps must be >= 1, got {s.num_inference_steps}")
        return s

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheduler": self.scheduler,
            "num_inference_steps": int(self.num_inference_steps),
            "guidance_type": self.guidance_type,
            "scales": dataclasses.asdict(self.scales),
            "diffusion_size": list(self.diffusion_size),
            "dtype": self.dtype,
            "clip_sample": bool(self.clip_sample),
            "prediction_type": self.prediction_type,
        }


def per_pair_noise(
    shape: tuple[int, ...], generators: list[torch.Generator], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(B, *shape) noise where row i comes from generator i alone (drawn on the generator's device)."""
    rows = [torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) for g in generators]
    return torch.stack(rows).to(device=device, dtype=dtype)


def _enable_winograd(parts: list[torch.nn.Module]) -> int:
    """Switch the parts' wide 3x3 convolutions to Winograd unless their transformed filters (4x the
    weights) would take more than half the memory available now; then warn and stay direct."""
    need = sum(winograd_conv.filter_bytes(p, pending_only=True) for p in parts)
    free = available_memory_bytes()
    if need and free is not None and need > free // 2:
        warnings.warn(
            f"cfld: the Winograd convolutions' filters need {need / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB of memory is available, so torch's direct convolutions run "
            "(about 1.3x slower per step on CPU). Set winograd: false in the method config to "
            "silence this.",
            stacklevel=3,
        )
        for p in parts:  # (an earlier pipeline on the same model may have switched them)
            winograd_conv.disable(p)
        return 0
    return sum(winograd_conv.enable(p) for p in parts)


class CFLDPipeline:
    """Sampling with a :class:`methods.cfld.model.CFLDModel` and a latent codec."""

    def __init__(
        self,
        model: Any,
        codec: LatentCodec,
        settings: SamplingSettings | None = None,
        winograd: bool = True,
    ) -> None:
        self.model = model
        self.codec = codec
        self.settings = settings or SamplingSettings()
        # The UNet is ~2 TFLOP per batch-3 step, two thirds of it convolutions: channels_last
        # convolutions are ~20% faster on CPU (measured, benchmarks/cfld_sampling.py) and on GPU.
        # Only the memory layout changes; parameters and their state_dict are the same.
        unet = getattr(model, "unet", None)
        if isinstance(unet, torch.nn.Module):
            unet.to(memory_format=torch.channels_last)
        # CPU fp32 sampling: the wide 3x3 convolutions (UNet, pose adapter, SD-VAE) run as Winograd
        # F(4x4,3x3), 1.3-3x faster each (winograd.py). Any other device, dtype or autograd uses
        # the direct path of torch.nn.Conv2d.
        self.winograd_layers = 0
        if winograd and self.device.type == "cpu":
            self.winograd_layers = _enable_winograd(self.module_parts())
        extra: dict[str, Any] = {"prediction_type": self.settings.prediction_type}
        if self.settings.clip_sample:
            extra["clip_sample"] = True
        self.scheduler = make_scheduler(self.settings.scheduler, **extra)

    def module_parts(self) -> list[torch.nn.Module]:
        """The model, and the codec where it is a module (the SD-VAE; the pixel codec is not)."""
        return [p for p in (self.model, self.codec) if isinstance(p, torch.nn.Module)]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def latent_shape(self) -> tuple[int, int, int]:
        h, w = self.settings.diffusion_size
        f = self.codec.downscale
        if h % f or w % f:
            raise ValueError(f"diffusion size {h}x{w} is not divisible by the codec's downscale {f}")
        return (self.codec.channels, h // f, w // f)

    def _autocast(self) -> Any:
        dtype = DTYPES[self.settings.dtype]
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    @torch.no_grad()
    def encode_conditions(
        self, cond_image: torch.Tensor, pose_map: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
        """The once-per-image (non-UNet) part: appearance encoder, decoder prompt, pose adapter.

        ``cond_image`` is in [0,1] at the model's condition size (256x256); the official dataset
        normalises it to [-1,1].
        """
        with self._autocast():
            prompt, hga = self.model.encode_appearance(cond_image * 2.0 - 1.0)
            pose = self.model.encode_pose(pose_map)
        return prompt, list(pose), dict(hga)

    @torch.no_grad()
    def denoise_step(
        self,
        scheduler: Any,
        latents: torch.Tensor,
        t: torch.Tensor,
        conditions: tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]],
        generator: list[torch.Generator] | None,
    ) -> torch.Tensor:
        """One sampling step: one batched UNet call over the guidance branches, then the scheduler."""
        s = self.settings
        prompts, poses, biases = conditions
        n = prompts.shape[0] // latents.shape[0]
        inputs = scheduler.scale_model_input(torch.cat([latents] * n), t)
        timesteps = t.reshape(1).expand(inputs.shape[0]).to(inputs.device)
        with self._autocast():
            out = self.model.unet_forward(inputs, timesteps, prompts, pose_features=poses, hga_biases=biases)
        # The guidance mix is linear, so it applies alike to epsilon, x0 and v predictions.
        out = combine(s.guidance_type, out.float(), s.scales)
        return scheduler.step(out, t, latents, generator=generator).prev_sample

    @torch.no_grad()
    def __call__(
        self,
        cond_image: torch.Tensor,
        pose_map: torch.Tensor,
        generator: list[torch.Generator] | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Sample (B,3,H,W) images in [0,1] at ``settings.diffusion_size``."""
        s = self.settings
        device = self.device
        bsz = cond_image.shape[0]
        if generator is not None and len(generator) != bsz:
            raise ValueError(f"need one generator per pair: got {len(generator)} for a batch of {bsz}")
        cond_image = cond_image.to(device, torch.float32)
        pose_map = pose_map.to(device, torch.float32)
        prompt, pose, hga = self.encode_conditions(cond_image, pose_map)
        uncond = self.model.learnable_vector
        conditions = batch_conditions(s.guidance_type, prompt, uncond, pose, hga)

        scheduler = fresh_copy(self.scheduler)
        scheduler.set_timesteps(int(s.num_inference_steps), device=device)
        shape = self.latent_shape()
        if generator is None:
            latents = torch.randn((bsz, *shape), device=device)
        else:
            latents = per_pair_noise(shape, generator, device, torch.float32)
        latents = latents * scheduler.init_noise_sigma
        for t in tqdm(scheduler.timesteps, desc="cfld sampling", disable=not progress, leave=False):
            latents = self.denoise_step(scheduler, latents, t, conditions, generator)
        with self._autocast():
            images = self.codec.decode(latents)
        return (images.float() * 0.5 + 0.5).clamp(0, 1)

    def conv3x3_algorithm(self) -> dict[str, Any]:
        """Which algorithm the wide 3x3 convolutions use (recorded in generation manifests)."""
        fast = self.winograd_layers > 0 and self.device.type == "cpu" and self.settings.dtype == "fp32"
        return {"algorithm": "winograd_f4x4_3x3" if fast else "direct", "layers": self.winograd_layers}


__all__ = ["DTYPES", "PREDICTION_TYPES", "CFLDPipeline", "SamplingSettings", "per_pair_noise"]
