"""CFLD sampling: condition image + target pose map -> image at the diffusion size.

One sampling step is ONE batched UNet call over all guidance branches (see :mod:`guidance`), as in
the official ``sample()``. Randomness comes only from the per-pair generators: the initial noise
and every ancestral (DDPM) noise draw of pair i use generator i, so an image does not depend on
the batch it was generated in.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bench.api import ConfigError
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


StepCallback = Callable[["CFLDPipeline", int, torch.Tensor, dict[str, Any]], "dict[str, Any] | None"]
OUTPUT_TYPES = ("pt", "pil", "latent")
CALLBACK_TENSORS = ("latents", "pred_original_sample")


def _scheduler_for(settings: SamplingSettings) -> Any:
    extra: dict[str, Any] = {"prediction_type": settings.prediction_type}
    if settings.clip_sample:
        extra["clip_sample"] = True
    return make_scheduler(settings.scheduler, **extra)


class CFLDPipeline:
    """Sampling with a :class:`methods.cfld.model.CFLDModel` and a latent codec, diffusers style.

    ``pipe(source_image=..., target_pose=..., num_inference_steps=..., generator=...)`` samples;
    every argument of a call overrides :attr:`settings` for that call only. Build one with
    :meth:`from_pretrained` (a folder of ours), :meth:`from_official` (the released weights: folder,
    files or state dicts; the official config's TEST section honoured) or directly from a model
    and a codec.

    The model you pass is not changed, except by ``optimize_model=True`` (opt-in; the default of
    :meth:`from_pretrained` / :meth:`from_official`, whose model is the pipeline's own): the UNet
    is converted to channels_last and, for CPU fp32 sampling, the wide 3x3 convolutions of the
    model and codec run as Winograd F(4x4,3x3) (winograd.py), in place. Parameters and state_dict
    values are unchanged; ``winograd.disable(model)`` undoes the patch.
    """

    def __init__(
        self,
        model: Any,
        codec: LatentCodec,
        settings: SamplingSettings | None = None,
        *,
        optimize_model: bool = False,
        winograd: bool = True,
        output_size: tuple[int, int] | None = None,
    ) -> None:
        self.model = model
        self.codec = codec
        self.settings = settings or SamplingSettings()
        self.output_size = tuple(output_size) if output_size is not None else None
        self.interrupt = False  # a step callback sets it to stop the sampling loop after that step
        self.winograd_layers = 0
        if optimize_model:
            # The UNet is ~2 TFLOP per batch-3 step, two thirds of it convolutions: channels_last
            # convolutions are ~20% faster on CPU (measured, benchmarks/cfld_sampling.py) and on GPU.
            # Only the memory layout changes; parameters and their state_dict are the same.
            unet = getattr(model, "unet", None)
            if isinstance(unet, torch.nn.Module):
                unet.to(memory_format=torch.channels_last)
            # CPU fp32 sampling: the wide 3x3 convolutions (UNet, pose adapter, SD-VAE) run as Winograd
            # F(4x4,3x3), 1.3-3x faster each (winograd.py). Any other device, dtype or autograd uses
            # the direct path of torch.nn.Conv2d.
            if winograd and self.device.type == "cpu":
                self.winograd_layers = _enable_winograd(self.module_parts())
        self.scheduler = _scheduler_for(self.settings)

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        codec: LatentCodec | None = None,
        device: str | torch.device = "cpu",
        optimize_model: bool = True,
        **sampling: Any,
    ) -> CFLDPipeline:
        """A folder of ours (``config.json`` + ``model.safetensors`` + ``pipeline.json``, as ``pgpis
        train`` writes it) or an official folder with the paper config; ``sampling`` overrides
        :class:`SamplingSettings` fields (``dtype`` auto: fp16 on CUDA, fp32 elsewhere)."""
        from methods.cfld.folders import is_official, load_folder

        folder = Path(folder)
        if folder.is_dir() and is_official(folder):
            return cls.from_official(
                folder, codec=codec, device=device, optimize_model=optimize_model, **sampling
            )
        model, codec, defaults, _ = load_folder(folder, {}, codec=codec)
        return cls._build(model, codec, {**defaults, **sampling}, device, optimize_model, None)

    @classmethod
    def from_official(
        cls,
        weights: Any,
        config: str | os.PathLike | dict[str, Any] | None = None,
        *,
        unet_config: dict[str, Any] | None = None,
        codec: LatentCodec | None = None,
        vae: str | None = None,
        device: str | torch.device = "cpu",
        optimize_model: bool = True,
        **sampling: Any,
    ) -> CFLDPipeline:
        """The released CFLD weights (folder, ``(pytorch_model.bin, pytorch_model_1.bin)`` paths, or
        the two state dicts in memory) with an official yacs config (YAML path, text or mapping;
        None = the official defaults). The config's model, input sizes, scheduler and TEST section
        are honoured (official_config.py); a ``sampling`` argument that contradicts a value the
        config sets is refused. ``codec`` replaces the SD-1.5 VAE, which is then never loaded;
        otherwise ``vae`` (hub id or folder, default SD-1.5) is."""
        from methods.cfld.checkpoint import from_official as model_from_official
        from methods.cfld.folders import official_codec
        from methods.cfld.official_config import merge_sampling, read_official_config

        official = read_official_config(config, unet_config)
        scales = sampling.pop("guidance_scales", None)
        if scales is not None:
            sampling["scales"] = _scales_dict(scales)
        merged = merge_sampling(official, sampling)
        codec = official_codec(None, vae, codec)  # before the weights: a missing VAE fails fast
        model = model_from_official(weights, official.model)
        return cls._build(model, codec, merged, device, optimize_model, official.output_size)

    @classmethod
    def _build(
        cls,
        model: Any,
        codec: Any,
        sampling: dict[str, Any],
        device: str | torch.device,
        optimize_model: bool,
        output_size: tuple[int, int] | None,
    ) -> CFLDPipeline:
        device = torch.device(device)
        sampling = dict(sampling)
        if sampling.get("dtype", "auto") == "auto":
            sampling["dtype"] = "fp16" if device.type == "cuda" else "fp32"
        settings = SamplingSettings.from_dict(sampling)
        model = model.to(device).eval()
        codec = codec.to(device)
        return cls(model, codec, settings, optimize_model=optimize_model, output_size=output_size)

    def module_parts(self) -> list[torch.nn.Module]:
        """The model, and the codec where it is a module (the SD-VAE; the pixel codec is not)."""
        return [p for p in (self.model, self.codec) if isinstance(p, torch.nn.Module)]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def latent_shape(self, settings: SamplingSettings | None = None) -> tuple[int, int, int]:
        h, w = (settings or self.settings).diffusion_size
        f = self.codec.downscale
        if h % f or w % f:
            raise ValueError(f"diffusion size {h}x{w} is not divisible by the codec's downscale {f}")
        return (self.codec.channels, h // f, w // f)

    def _autocast(self, settings: SamplingSettings | None = None) -> Any:
        dtype = DTYPES[(settings or self.settings).dtype]
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    # -- inputs ----------------------------------------------------------------------------------
    def _config(self) -> Any:
        return getattr(self.model, "config", None)

    def prepare_source(self, source_image: Any) -> torch.Tensor:
        """(B,3,h,w) in [0,1] at the condition size from a PIL image, a list of them, or a tensor
        (3,H,W) / (B,3,H,W) in [0,1]. PIL images are resized as the dataset loader resizes files
        (bench.api.image_tensor); a tensor of another size is resized bicubic + antialias. No file
        is needed."""
        from bench.api import image_tensor

        cfg = self._config()
        size = tuple(cfg.swin.img_size) if cfg is not None else None
        if isinstance(source_image, (list, tuple)) or hasattr(source_image, "convert"):
            images = list(source_image) if isinstance(source_image, (list, tuple)) else [source_image]
            if not all(hasattr(im, "convert") for im in images):
                raise ConfigError("source_image: a list must hold PIL images")
            return torch.stack([image_tensor(im, size) for im in images])
        if not isinstance(source_image, torch.Tensor):
            raise ConfigError(
                f"source_image must be a PIL image or a tensor, got {type(source_image).__name__}"
            )
        x = source_image[None] if source_image.ndim == 3 else source_image
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(
                f"source_image tensor must be (3,H,W) or (B,3,H,W) in [0,1], got {tuple(source_image.shape)}"
            )
        x = x.float()
        if size is not None and tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        return x

    def prepare_pose(self, target_pose: Any, frame: tuple[int, int] = (256, 176)) -> torch.Tensor:
        """(B,21,h,w) cfld21 pose maps from keypoints ((18,2) or (B,18,2) of (y, x) in ``frame``, -1
        missing: DeepFashion's annotation frame by default) or from pose maps ((21,h,w) / (B,21,h,w))."""
        from bench.api import pose_map

        cfg = self._config()
        pose_size = tuple(cfg.pose.img_size) if cfg is not None else None
        t = (
            torch.as_tensor(np.asarray(target_pose))
            if not isinstance(target_pose, torch.Tensor)
            else target_pose
        )
        if tuple(t.shape[-2:]) == (18, 2):
            if pose_size is None:
                raise ConfigError("target_pose keypoints need a model with a config (its pose size)")
            kps = t.reshape(-1, 18, 2).cpu().numpy()
            return torch.stack(
                [torch.from_numpy(pose_map(k, "cfld21", pose_size, tuple(frame))) for k in kps]
            )
        x = t[None] if t.ndim == 3 else t
        if x.ndim != 4:
            raise ConfigError(
                f"target_pose must be keypoints (18,2)/(B,18,2) or pose maps (B,21,h,w), got {tuple(t.shape)}"
            )
        if cfg is not None and (x.shape[1] != cfg.pose.pose_channels or tuple(x.shape[-2:]) != pose_size):
            raise ConfigError(
                f"target_pose maps must be ({cfg.pose.pose_channels}, {pose_size[0]}, {pose_size[1]}) for this model "
                f"(bench.api.pose_map(kps, 'cfld21', {pose_size})), got {tuple(x.shape[1:])}"
            )
        return x.float()

    def call_settings(
        self,
        num_inference_steps: int | None = None,
        guidance_type: str | None = None,
        guidance_scales: Any = None,
        scheduler: str | None = None,
    ) -> SamplingSettings:
        """:attr:`settings` with a call's overrides, validated (``self.settings`` is not changed)."""
        d = self.settings.to_dict()
        if num_inference_steps is not None:
            d["num_inference_steps"] = int(num_inference_steps)
        if guidance_type is not None:
            d["guidance_type"] = guidance_type
        if guidance_scales is not None:
            d["scales"] = {**d["scales"], **_scales_dict(guidance_scales)}
        if scheduler is not None:
            d["scheduler"] = scheduler
        return SamplingSettings.from_dict(d)

    # -- sampling --------------------------------------------------------------------------------
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
    def predict(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        conditions: tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]],
        settings: SamplingSettings | None = None,
        scheduler: Any = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The guided prediction of one step and the branch predictions it mixes (one batched UNet
        call over the branches of the guidance type, in :data:`guidance.BRANCHES` order)."""
        s = settings or self.settings
        prompts, poses, biases = conditions
        n = prompts.shape[0] // latents.shape[0]
        inputs = (scheduler or self.scheduler).scale_model_input(torch.cat([latents] * n), t)
        timesteps = t.reshape(1).expand(inputs.shape[0]).to(inputs.device)
        with self._autocast(s):
            out = self.model.unet_forward(inputs, timesteps, prompts, pose_features=poses, hga_biases=biases)
        # The guidance mix is linear, so it applies alike to epsilon, x0 and v predictions.
        out = out.float()
        return combine(s.guidance_type, out, s.scales), out.chunk(n)

    @torch.no_grad()
    def step(
        self,
        scheduler: Any,
        latents: torch.Tensor,
        t: torch.Tensor,
        conditions: tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]],
        generator: Any,
        settings: SamplingSettings | None = None,
    ) -> Any:
        """One sampling step: the guided prediction, then the scheduler (its full step output)."""
        guided, _ = self.predict(latents, t, conditions, settings, scheduler)
        return scheduler.step(guided, t, latents, generator=generator)

    @torch.no_grad()
    def denoise_step(
        self,
        scheduler: Any,
        latents: torch.Tensor,
        t: torch.Tensor,
        conditions: tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]],
        generator: list[torch.Generator] | None,
    ) -> torch.Tensor:
        """One sampling step with :attr:`settings`: the next latents."""
        return self.step(scheduler, latents, t, conditions, generator).prev_sample

    def _scheduler_for_call(self, scheduler: Any, settings: SamplingSettings) -> Any:
        if scheduler is None or isinstance(scheduler, str):
            base = self.scheduler if scheduler is None else _scheduler_for(settings)
            return fresh_copy(base)
        config = getattr(scheduler, "config", None)
        if config is None or not hasattr(scheduler, "step"):
            raise ConfigError(
                f"scheduler must be a name or a diffusers scheduler, got {type(scheduler).__name__}"
            )
        if config.get("prediction_type", "epsilon") != settings.prediction_type:
            raise ConfigError(
                f"scheduler predicts {config.get('prediction_type')!r} but the model was trained for "
                f"{settings.prediction_type!r}; build it with prediction_type={settings.prediction_type!r}"
            )
        return fresh_copy(scheduler)

    @torch.no_grad()
    def __call__(
        self,
        source_image: Any,
        target_pose: Any,
        generator: torch.Generator | list[torch.Generator] | None = None,
        progress: bool = False,
        *,
        num_inference_steps: int | None = None,
        guidance_type: str | None = None,
        guidance_scales: GuidanceScales | dict[str, float] | float | None = None,
        scheduler: str | Any = None,
        latents: torch.Tensor | None = None,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        output_type: str = "pt",
        keypoint_frame: tuple[int, int] = (256, 176),
    ) -> Any:
        """Sample images of the source person in the target pose(s).

        - ``source_image``: PIL image(s) or a (B,3,H,W) / (3,H,W) tensor in [0,1] (any size: resized
          to the condition size); ``target_pose``: keypoints (18,2) / (B,18,2) (y, x) in
          ``keypoint_frame`` or cfld21 pose maps. One source with B poses (or one pose with B
          sources) is broadcast.
        - ``num_inference_steps``, ``guidance_type``, ``guidance_scales`` (GuidanceScales, a dict of
          some of full/down/all/guidance/up, or one float for all) and ``scheduler`` (ddpm | ddim |
          dpmsolver++, or a diffusers scheduler instance predicting what the model predicts) override
          :attr:`settings` for this call.
        - ``generator``: one per image (the engine's per-pair seeding: image i depends on generator
          i only) or one for the batch. ``latents``: the initial noise (B, *latent_shape()), scaled by
          the scheduler's ``init_noise_sigma`` as in diffusers; drawn from ``generator`` otherwise.
        - ``callback_on_step_end(pipe, i, t, tensors)`` after each step, with ``tensors`` holding the
          names of ``callback_on_step_end_tensor_inputs`` (``latents``, ``pred_original_sample``);
          it may return ``{"latents": ...}`` to replace them, and set ``pipe.interrupt = True`` to
          stop after that step (the current latents are then decoded).
        - ``output_type``: ``"pt"`` (B,3,H,W) in [0,1], ``"pil"`` (list of PIL images), ``"latent"``.
          Images come at the diffusion size, or at ``output_size`` when the pipeline has one
          (from_official: TEST.IMG_SIZE), resized bicubic + antialias as the official eval.
        """
        if output_type not in OUTPUT_TYPES:
            raise ConfigError(f"output_type must be one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
        unknown = sorted(set(callback_on_step_end_tensor_inputs) - set(CALLBACK_TENSORS))
        if unknown:
            raise ConfigError(
                f"callback_on_step_end_tensor_inputs {unknown} unknown; use {', '.join(CALLBACK_TENSORS)}"
            )
        s = self.call_settings(
            num_inference_steps,
            guidance_type,
            guidance_scales,
            scheduler if isinstance(scheduler, str) else None,
        )
        device = self.device
        cond_image = self.prepare_source(source_image).to(device, torch.float32)
        pose_map = self.prepare_pose(target_pose, keypoint_frame).to(device, torch.float32)
        if cond_image.shape[0] != pose_map.shape[0]:
            if cond_image.shape[0] == 1:
                cond_image = cond_image.expand(pose_map.shape[0], -1, -1, -1)
            elif pose_map.shape[0] == 1:
                pose_map = pose_map.expand(cond_image.shape[0], -1, -1, -1)
            else:
                raise ConfigError(f"{cond_image.shape[0]} source images for {pose_map.shape[0]} target poses")
        bsz = cond_image.shape[0]
        if isinstance(generator, (list, tuple)) and len(generator) != bsz:
            raise ValueError(f"need one generator per pair: got {len(generator)} for a batch of {bsz}")
        prompt, pose, hga = self.encode_conditions(cond_image, pose_map)
        uncond = self.model.learnable_vector
        conditions = batch_conditions(s.guidance_type, prompt, uncond, pose, hga)

        sched = self._scheduler_for_call(scheduler, s)
        sched.set_timesteps(int(s.num_inference_steps), device=device)
        shape = self.latent_shape(s)
        if latents is not None:
            if tuple(latents.shape) != (bsz, *shape):
                raise ConfigError(f"latents must have shape {(bsz, *shape)}, got {tuple(latents.shape)}")
            latents = latents.to(device, torch.float32)
        elif generator is None:
            latents = torch.randn((bsz, *shape), device=device)
        elif isinstance(generator, torch.Generator):
            latents = torch.randn((bsz, *shape), generator=generator, device=generator.device).to(device)
        else:
            latents = per_pair_noise(shape, list(generator), device, torch.float32)
        latents = latents * sched.init_noise_sigma
        self.interrupt = False
        for i, t in enumerate(tqdm(sched.timesteps, desc="cfld sampling", disable=not progress, leave=False)):
            out = self.step(sched, latents, t, conditions, generator, s)
            latents = out.prev_sample
            if callback_on_step_end is not None:
                available = {
                    "latents": latents,
                    "pred_original_sample": getattr(out, "pred_original_sample", None),
                }
                given = {k: available[k] for k in callback_on_step_end_tensor_inputs}
                changed = callback_on_step_end(self, i, t, given) or {}
                latents = changed.get("latents", latents)
            if self.interrupt:
                break
        if output_type == "latent":
            return latents
        with self._autocast(s):
            images = self.codec.decode(latents)
        images = (images.float() * 0.5 + 0.5).clamp(0, 1)
        if self.output_size is not None and tuple(images.shape[-2:]) != self.output_size:
            images = F.interpolate(
                images, size=self.output_size, mode="bicubic", antialias=True, align_corners=False
            )
            images = images.clamp(0, 1)
        if output_type == "pil":
            return to_pil(images)
        return images

    def conv3x3_algorithm(self) -> dict[str, Any]:
        """Which algorithm the wide 3x3 convolutions use (recorded in generation manifests)."""
        fast = self.winograd_layers > 0 and self.device.type == "cpu" and self.settings.dtype == "fp32"
        return {"algorithm": "winograd_f4x4_3x3" if fast else "direct", "layers": self.winograd_layers}


def _scales_dict(scales: Any) -> dict[str, float]:
    if isinstance(scales, GuidanceScales):
        return dataclasses.asdict(scales)
    if isinstance(scales, (int, float)):
        return {k: float(scales) for k in ("full", "down", "all", "guidance", "up")}
    if isinstance(scales, dict):
        unknown = sorted(set(scales) - {"full", "down", "all", "guidance", "up"})
        if unknown:
            raise ConfigError(
                f"guidance_scales: unknown scale(s) {unknown}; known: full, down, all, guidance, up"
            )
        return {k: float(v) for k, v in scales.items()}
    raise ConfigError(
        f"guidance_scales must be GuidanceScales, a dict or a number, got {type(scales).__name__}"
    )


def to_pil(images: torch.Tensor) -> list[Any]:
    """(B,3,H,W) in [0,1] -> PIL images, rounded to uint8 as the engine saves PNGs."""
    from PIL import Image

    arr = np.rint(images.detach().float().clamp(0, 1).cpu().numpy() * np.float32(255.0)).astype(np.uint8)
    return [Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0))) for a in arr]


__all__ = [
    "DTYPES",
    "OUTPUT_TYPES",
    "PREDICTION_TYPES",
    "CFLDPipeline",
    "SamplingSettings",
    "per_pair_noise",
    "to_pil",
]
