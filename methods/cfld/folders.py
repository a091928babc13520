"""A CFLD checkpoint folder -> (model, codec, sampling defaults, format), for the plugin and the pipeline.

Two layouts:
- OFFICIAL: ``pytorch_model.bin`` + ``pytorch_model_1.bin`` (the released checkpoint). The model is
  the paper config unless ``model`` says otherwise; the latent codec is the SD-1.5 VAE (``vae``: hub
  id or folder) unless a codec (or a ``latent`` spec, e.g. ``{"kind": "pixel", "factor": 2}``) is
  supplied, in which case no VAE is looked for. Sampling defaults: the official TEST settings.
- OURS: ``config.json`` + ``model.safetensors`` (+ ``pipeline.json``, written by ``pgpis train``:
  the latent codec and the sampling settings the model was trained for).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.api import ConfigError, DataError


def is_official(folder: Path) -> bool:
    from methods.cfld.checkpoint import OFFICIAL_FILES

    return any((folder / name).is_file() for name in OFFICIAL_FILES)


def official_codec(latent: dict[str, Any] | None, vae: str | None, codec: Any = None) -> Any:
    """The codec of an official checkpoint: ``codec`` as given, else ``latent``, else the SD-1.5 VAE."""
    from methods.cfld.vae import build_codec

    if codec is not None:
        if latent is not None or vae is not None:
            raise ConfigError("cfld: give a codec, or a latent spec, or an SD-1.5 vae: only one")
        return codec
    if latent is not None:
        if vae is not None:
            raise ConfigError("cfld: config keys 'latent' and 'vae' both name the codec; keep one")
        return build_codec(dict(latent))
    return build_codec({"kind": "sd_vae", "vae": vae})


def load_folder(
    folder: Path, config: dict[str, Any], codec: Any = None
) -> tuple[Any, Any, dict[str, Any], str]:
    """(model, codec, sampling defaults, format) from an official or our checkpoint folder.

    ``config`` keys used here: ``model`` (official only), ``vae``, ``latent`` (official only).
    """
    from methods.cfld.checkpoint import (
        CONFIG_NAME,
        OFFICIAL_FILES,
        WEIGHTS_NAME,
        load_official,
        load_pretrained,
    )
    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel
    from methods.cfld.train import PIPELINE_FILE
    from methods.cfld.vae import build_codec

    if not folder.is_dir():
        raise DataError(
            f"CFLD checkpoint folder {folder} does not exist; pass the official folder "
            f"({' + '.join(OFFICIAL_FILES)}) or the model/ folder of a `pgpis train` run"
        )
    if is_official(folder):
        cfg = CFLDConfig.from_dict(dict(config.get("model") or {"base": "paper"}))
        # The codec first: a missing SD-1.5 download fails before gigabytes of weights are read.
        codec = official_codec(config.get("latent"), config.get("vae"), codec)
        model = CFLDModel(cfg)
        load_official(model, folder)
        # The official TEST defaults: DDPM, 50 steps, uc_down_full 2.0/2.0, 512x512 generation.
        sampling = {"scheduler": "ddpm", "num_inference_steps": 50, "diffusion_size": list(cfg.gt_img_size)}
        return model, codec, sampling, "official"
    if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file():
        for key in ("model", "latent"):
            if key in config:
                raise ConfigError(
                    f"cfld: config key {key!r} applies to official folders only; ours carry their own"
                )
        model = load_pretrained(folder)
        meta_path = folder / PIPELINE_FILE
        meta: dict[str, Any] = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{meta_path} is not valid JSON ({e}); re-save the model with `pgpis train`"
                ) from e
        if codec is None:
            latent = dict(meta.get("latent") or {"kind": "sd_vae"})
            if latent.get("kind") == "sd_vae" and config.get("vae"):
                latent["vae"] = config["vae"]
            codec = build_codec(latent)
        sampling = dict(meta.get("sampling") or {})
        sampling.setdefault("diffusion_size", list(model.config.gt_img_size))
        sampling.pop("dtype", None)  # chosen for the device at load time
        return model, codec, sampling, "pgpis"
    raise DataError(
        f"{folder} is not a CFLD checkpoint: expected the official {' + '.join(OFFICIAL_FILES)} or our "
        f"{CONFIG_NAME} + {WEIGHTS_NAME} (+ {PIPELINE_FILE}); check the --checkpoint path"
    )
