"""The ``cfld`` method plugin: CFLD (Lu et al., CVPR 2024) sampling and training.

``--checkpoint`` is either the OFFICIAL released folder (``pytorch_model.bin`` +
``pytorch_model_1.bin``; the SD-1.5 VAE comes from config ``vae``, a hub id or local folder) or a
folder of ours (``config.json`` + ``model.safetensors`` + ``pipeline.json``, as ``pgpis train``
writes). The condition image and cfld21 pose maps come at the model's sizes (256x256 in the paper
config); images are generated at the diffusion size (512x512 in the paper config) and the engine
resizes them to the evaluation size with bicubic + antialias, like the official ``eval()``.

Config keys (all optional): ``scheduler`` (ddpm | ddim | dpmsolver++), ``num_inference_steps``,
``guidance_type``, ``scales`` ({full, down, all, guidance}), ``dtype`` (auto | fp32 | fp16 | bf16;
auto = fp32 on CPU, fp16 on GPU), ``model`` (CFLDConfig mapping for an official folder; default
the paper config), ``vae`` (SD-1.5 hub id or folder), ``latent`` (official folders: a codec spec such
as ``{kind: pixel, factor: 2}`` used instead of the SD-1.5 VAE, which is then not needed), ``winograd`` (default
true: on CPU in fp32 the wide 3x3 convolutions run as Winograd F(4x4,3x3), see winograd.py; false
keeps torch's direct convolution everywhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.api import ConfigError, InputSpec, Method, MethodInfo, PairBatch
from methods.cfld.cpu_support import warn_if_emulated

SAMPLING_KEYS = ("scheduler", "num_inference_steps", "guidance_type", "scales", "dtype", "clip_sample")
CONFIG_KEYS = (*SAMPLING_KEYS, "model", "vae", "latent", "winograd")


class CFLDMethod(Method):
    info = MethodInfo(
        name="cfld",
        description="Coarse-to-Fine Latent Diffusion (native re-implementation; loads the official checkpoint)",
        paper="Lu et al., Coarse-to-Fine Latent Diffusion for Pose-Guided Person Image Synthesis, CVPR 2024",
        trainable=True,
        extra={"default_guidance": "uc_down_full", "default_scheduler": "ddpm/50"},
    )

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        pipeline: Any = None,
        checkpoint: str | None = None,
        checkpoint_format: str | None = None,
    ) -> None:
        super().__init__(config)
        self.pipeline = pipeline
        self.checkpoint = checkpoint
        self.checkpoint_format = checkpoint_format

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        config: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        device: str | torch.device = "cpu",
    ) -> CFLDMethod:
        from methods.cfld.folders import load_folder
        from methods.cfld.pipeline import CFLDPipeline, SamplingSettings

        config = dict(config or {})
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ConfigError(f"cfld: unknown config key(s) {unknown}; known: {', '.join(CONFIG_KEYS)}")
        if checkpoint is None:
            raise ConfigError(
                "cfld needs --checkpoint: the official CFLD folder (pytorch_model.bin + pytorch_model_1.bin) "
                "or a folder written by `pgpis train --method cfld` (its model/ subfolder)"
            )
        device = torch.device(device)
        model, codec, sampling, fmt = load_folder(Path(checkpoint), config)
        sampling.update({k: config[k] for k in SAMPLING_KEYS if k in config})
        dtype = sampling.get("dtype", "auto")
        if dtype == "auto":
            sampling["dtype"] = "fp16" if device.type == "cuda" else "fp32"
        settings = SamplingSettings.from_dict(sampling)
        if device.type == "cpu":
            warn_if_emulated(settings.dtype, advice="Use dtype fp32 (or auto) on this CPU.")
        model = model.to(device).eval()
        codec = codec.to(device)
        winograd = config.get("winograd", True)
        if not isinstance(winograd, bool):
            raise ConfigError(f"cfld: config key 'winograd' must be true or false, got {winograd!r}")
        # The method owns this model, so the pipeline may lay it out for speed in place.
        pipeline = CFLDPipeline(model, codec, settings, optimize_model=True, winograd=winograd)
        return cls(config, pipeline, str(checkpoint), fmt)

    # -- the plugin contract ------------------------------------------------------------------------
    @property
    def inputs(self) -> InputSpec:
        cfg = self._model().config
        return InputSpec(
            image_size=tuple(cfg.swin.img_size), pose_kind="cfld21", pose_size=tuple(cfg.pose.img_size)
        )

    @property
    def device(self) -> torch.device:
        return self.pipeline.device if self.pipeline is not None else torch.device("cpu")

    def settings(self) -> dict[str, Any]:
        return {
            "method": self.info.name,
            "checkpoint_format": self.checkpoint_format,
            "checkpoint": self.checkpoint,
            "sampling": self.pipeline.settings.to_dict() if self.pipeline is not None else None,
            "latent": self.pipeline.codec.describe() if self.pipeline is not None else None,
            "model": self._model().config.to_dict() if self.pipeline is not None else None,
            "conv3x3": self.pipeline.conv3x3_algorithm() if self.pipeline is not None else None,
        }

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        if batch.target_pose is None:
            raise ConfigError("cfld needs cfld21 target pose maps in the batch (InputSpec.pose_kind)")
        return self.pipeline(batch.source_image, batch.target_pose, generator=generator, output_type="pt")

    def train(self, args: Any) -> None:
        from methods.cfld.cpu_determinism import restart_pinned
        from methods.cfld.train import train
        from methods.cfld.train_settings import TrainSettings

        settings = TrainSettings.from_yaml(args.config)
        restart_pinned(settings.cpu_kernels)  # the same command again, its CPU kernels pinned
        result = train(
            settings,
            args.dataset,
            args.out,
            max_steps=getattr(args, "max_steps", None),
            resume=bool(getattr(args, "resume", False)),
            tracker=getattr(args, "tracker", "none") or "none",
        )
        if not result.is_main_process:
            return  # one summary per run, from the main process
        last = f"last loss {result.losses[max(result.losses)]:.4f}" if result.losses else "no new steps"
        print(
            f"pgpis train: cfld reached step {result.global_step} in {result.seconds:.0f} s ({last}); "
            f"model in {result.model_dir}"
        )

    def _model(self) -> Any:
        if self.pipeline is None:
            raise ConfigError("cfld: build the method with from_config(config, checkpoint) first")
        return self.pipeline.model


__all__ = ["CFLDMethod"]
