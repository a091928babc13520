"""The official CFLD yacs config (``defaults/deepfashion.py`` keys) read as a whole: model and sampling.

``CFLDConfig.from_official`` reads the architecture sections. This module adds what decides the
sampled pixels, so a config that sets them is honoured rather than silently ignored:

=================================================  ============================================
official key                                       here
=================================================  ============================================
``INPUT.GT.IMG_SIZE``                              ``gt_img_size`` and the diffusion size
``INPUT.COND.IMG_SIZE`` / ``INPUT.POSE.IMG_SIZE``  ``swin.img_size`` / ``pose.img_size``
``MODEL.SCHEDULER_CONFIG.NAME``                    ``scheduler`` (ddpm, ddim; euler/pndm refused)
``TEST.NUM_INFERENCE_STEPS``                       ``num_inference_steps`` (default 50, as f2ea2a7)
``TEST.GUIDANCE_TYPE``                             ``guidance_type``
``TEST.{FULL,DOWN_BLOCK,ALL_BLOCK,UP_BLOCK}_GUIDANCE_SCALE``, ``TEST.GUIDANCE_SCALE``
                                                   ``scales.full/down/all/up/guidance``
``TEST.IMG_SIZE``                                  the size the pipeline resizes its output to
                                                   (bicubic + antialias, as the official eval)
``TEST.DDIM_INVERSION_STEPS`` > 0                  refused: DDIM inversion is not implemented
``TEST.MICRO_BATCH_SIZE``, ``TEST.NUM_WORKERS``    no effect on pixels (per-pair generators)
=================================================  ============================================
An unknown ``TEST`` key is refused, so a typo never passes for a setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import ConfigError

# TEST keys -> sampling setting (scales are nested under "scales").
_TEST_SAMPLING = {
    "NUM_INFERENCE_STEPS": ("num_inference_steps",),
    "GUIDANCE_TYPE": ("guidance_type",),
    "FULL_GUIDANCE_SCALE": ("scales", "full"),
    "DOWN_BLOCK_GUIDANCE_SCALE": ("scales", "down"),
    "ALL_BLOCK_GUIDANCE_SCALE": ("scales", "all"),
    "UP_BLOCK_GUIDANCE_SCALE": ("scales", "up"),
    "GUIDANCE_SCALE": ("scales", "guidance"),
}
_TEST_NO_PIXELS = {"MICRO_BATCH_SIZE", "NUM_WORKERS"}
_TEST_INVERSION = {
    "DDIM_INVERSION_STEPS",
    "DDIM_INVERSION_DOWN_BLOCK_GUIDANCE",
    "DDIM_INVERSION_UP_BLOCK_GUIDANCE",
    "DDIM_INVERSION_UNCONDITIONAL",
}
SCHEDULER_NAMES = {"ddpm": "ddpm", "ddim": "ddim"}  # official names this implementation samples with
DEFAULT_TEST = {"NUM_INFERENCE_STEPS": 50, "IMG_SIZE": [256, 176]}  # defaults/deepfashion.py at f2ea2a7


@dataclass
class OfficialConfig:
    model: Any  # CFLDConfig
    sampling: dict[str, Any]  # SamplingSettings.from_dict keys set by the config (or its defaults)
    explicit: set[str]  # the sampling keys the config itself sets (scales as "scales.full", ...)
    output_size: tuple[int, int]  # TEST.IMG_SIZE
    no_effect: list[str] = field(default_factory=list)


def _mapping(config: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    import yaml

    if config is None:
        return {}
    if isinstance(config, dict):
        return config
    text = str(config)
    path = Path(text) if "\n" not in text and len(text) < 4096 else None
    if path is not None and path.is_file():
        text = path.read_text()
    elif path is not None and text.endswith((".yaml", ".yml")):
        raise ConfigError(f"official CFLD config {path} does not exist")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"official CFLD config is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError("an official CFLD config must be a mapping (MODEL:, INPUT:, TEST: ...)")
    return data


def _size(value: Any, key: str) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"official CFLD config: {key} must be [H, W], got {value!r}")
    return int(value[0]), int(value[1])


def read_official_config(
    config: str | Path | dict[str, Any] | None = None, unet_config: dict[str, Any] | None = None
) -> OfficialConfig:
    """Model config, sampling settings and output size of an official config (YAML path, text or
    mapping; None = the official defaults). ``unet_config`` is the UNet's diffusers config (default SD-1.5)."""
    import yaml

    from methods.cfld.config import SD15_UNET_CONFIG, CFLDConfig

    raw = _mapping(config)
    model = CFLDConfig.from_official(
        yaml.safe_dump({"MODEL": raw.get("MODEL") or {}}), unet_config or SD15_UNET_CONFIG
    )
    inputs = raw.get("INPUT") or {}
    if (inputs.get("GT") or {}).get("IMG_SIZE") is not None:
        model.gt_img_size = _size(inputs["GT"]["IMG_SIZE"], "INPUT.GT.IMG_SIZE")
    if (inputs.get("COND") or {}).get("IMG_SIZE") is not None:
        model.swin.img_size = _size(inputs["COND"]["IMG_SIZE"], "INPUT.COND.IMG_SIZE")
    if (inputs.get("POSE") or {}).get("IMG_SIZE") is not None:
        model.pose.img_size = _size(inputs["POSE"]["IMG_SIZE"], "INPUT.POSE.IMG_SIZE")
    model.validate()

    sampling: dict[str, Any] = {"scheduler": "ddpm", "diffusion_size": list(model.gt_img_size)}
    explicit: set[str] = set()
    name = ((raw.get("MODEL") or {}).get("SCHEDULER_CONFIG") or {}).get("NAME")
    if name is not None:
        if str(name).lower() not in SCHEDULER_NAMES:
            raise ConfigError(
                f"official CFLD config: MODEL.SCHEDULER_CONFIG.NAME {name!r} is not implemented here; "
                f"use one of {', '.join(SCHEDULER_NAMES)} (the released results use ddpm)"
            )
        sampling["scheduler"] = SCHEDULER_NAMES[str(name).lower()]
        explicit.add("scheduler")
    test = dict(DEFAULT_TEST)
    given = raw.get("TEST") or {}
    unknown = sorted(set(given) - set(_TEST_SAMPLING) - _TEST_NO_PIXELS - _TEST_INVERSION - {"IMG_SIZE"})
    if unknown:
        raise ConfigError(f"official CFLD config: unknown TEST key(s) {unknown}")
    test.update(given)
    if int(test.get("DDIM_INVERSION_STEPS", 0) or 0) > 0:
        raise ConfigError(
            "official CFLD config: TEST.DDIM_INVERSION_STEPS > 0 (sampling from the DDIM-inverted source) is not "
            "implemented; set it to 0 (the official default)"
        )
    for key, target in _TEST_SAMPLING.items():
        if key not in test:
            continue
        if len(target) == 1:
            sampling[target[0]] = test[key]
        else:
            sampling.setdefault("scales", {})[target[1]] = float(test[key])
        if key in given:
            explicit.add(".".join(target))
    return OfficialConfig(
        model=model,
        sampling=sampling,
        explicit=explicit,
        output_size=_size(test["IMG_SIZE"], "TEST.IMG_SIZE"),
        no_effect=sorted(k for k in given if k in _TEST_NO_PIXELS),
    )


def merge_sampling(official: OfficialConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    """The config's sampling settings with ``overrides`` applied; an override of a value the config
    sets explicitly to something else is refused (the caller and the config disagree)."""
    merged = {**official.sampling, "scales": dict(official.sampling.get("scales") or {})}
    for key, value in overrides.items():
        if value is None:
            continue
        items = [(f"scales.{k}", v) for k, v in value.items()] if key == "scales" else [(key, value)]
        for name, v in items:
            current = merged["scales"].get(name[7:]) if name.startswith("scales.") else merged.get(name)
            if name in official.explicit and current != v:
                raise ConfigError(
                    f"{name}={v!r} conflicts with the official config, which sets it to {current!r} "
                    "(its TEST/MODEL section); change the config or drop the argument"
                )
            if name.startswith("scales."):
                merged["scales"][name[7:]] = v
            else:
                merged[name] = v
    return merged
