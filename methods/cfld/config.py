"""CFLD model configuration.

Field names mirror the official yacs keys (``MODEL.COND_STAGE_CONFIG.EMBED_DIM`` ->
``swin.embed_dim`` ...), so a value can be checked against ``defaults/deepfashion.py`` of
YanzuoLu/CFLD at a glance. ``paper()`` holds the official defaults; ``tiny()`` keeps the
architecture (the block indices, the 64x64 latent, shifted Swin windows) with small widths so it
trains on a CPU in minutes. Only the default branch of the official code is implemented (learnable
query decoder, HGA on cross-attention Q, no last norm); the ablation switches raise ConfigError.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import ConfigError

# SD-1.5 UNet2DConditionModel config (pretrained_models/unet/config.json of the official repo).
SD15_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# SD-1.5 AutoencoderKL config (pretrained_models/vae/config.json); no scaling_factor key, so 0.18215.
SD15_VAE_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}


@dataclass
class SwinConfig:
    """MODEL.COND_STAGE_CONFIG (+ INPUT.COND.IMG_SIZE).

    Pretrained weights are not part of the architecture: see pretrained.load_swin_imagenet.
    """

    img_size: tuple[int, int] = (256, 256)
    patch_size: int = 4
    embed_dim: int = 128
    depths: list[int] = field(default_factory=lambda: [2, 2, 18, 2])
    num_heads: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    window_size: int = 16
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.2
    last_norm: bool = False


@dataclass
class AppearanceConfig:
    """MODEL.APPEARANCE_GUIDANCE_CONFIG (the HGA bias generator)."""

    attn_residual_block_idx: list[int] = field(default_factory=lambda: [11, 10, 9, 8, 7, 6, 5, 4, 3])
    inner_dims: list[int] = field(default_factory=lambda: [128, 128, 128, 256, 256, 256, 512, 512, 512])
    ctx_dims: list[int] = field(default_factory=lambda: [320, 320, 320, 640, 640, 640, 1280, 1280, 1280])
    embed_dims: list[int] = field(default_factory=lambda: [64, 64, 64, 128, 128, 128, 256, 256, 256])
    heads: list[int] = field(default_factory=lambda: [2, 2, 2, 4, 4, 4, 8, 8, 8])
    depth: int = 4
    convin_kernel_size: list[int] = field(default_factory=lambda: [1] * 9)
    convin_stride: list[int] = field(default_factory=lambda: [1] * 9)
    convin_padding: list[int] = field(default_factory=lambda: [0] * 9)


@dataclass
class PoseConfig:
    """MODEL.POSE_GUIDANCE_CONFIG (+ INPUT.POSE.IMG_SIZE)."""

    downscale_factor: int = 4
    pose_channels: int = 21
    in_channels: int = 320
    channels: list[int] = field(default_factory=lambda: [320, 640, 1280])
    img_size: tuple[int, int] = (256, 256)


@dataclass
class DecoderConfig:
    """MODEL.DECODER_CONFIG (perception-refined decoder)."""

    n_ctx: int = 16
    ctx_dim: int = 768
    depth: int = 8
    heads: int = 24


@dataclass
class UNetConfig:
    """MODEL.UNET_CONFIG: the diffusers UNet config and which of its weights train.

    ``train_all`` (not official) fine-tunes the whole UNet; the tiny config uses it because no
    pretrained base exists offline for a tiny UNet.
    """

    config: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SD15_UNET_CONFIG))
    trainable_block_idx: list[int] = field(default_factory=lambda: [11, 10, 9, 8, 7, 6, 5, 4, 3])
    train_self_attn_q: bool = False
    train_self_attn_k: bool = False
    train_self_attn_v: bool = False
    train_cross_attn_q: bool = False
    train_cross_attn_k: bool = True
    train_cross_attn_v: bool = True
    train_all: bool = False


@dataclass
class VAEConfig:
    """MODEL.FIRST_STAGE_CONFIG: not part of CFLDModel, loaded by pretrained.load_vae."""

    config: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(SD15_VAE_CONFIG))
    scaling_factor: float = 0.18215


def load_yaml_mapping(path: str | Path, what: str, hint: str) -> dict[str, Any]:
    """The mapping a YAML file holds (empty file: ``{}``); ConfigError naming ``what`` and ``path``
    when the file is missing (with ``hint``), not YAML, or not a mapping."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist; {hint}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at top level")
    return data


@dataclass
class CFLDConfig:
    """Everything that defines a CFLD model's architecture and its frozen/trained split."""

    swin: SwinConfig = field(default_factory=SwinConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    gt_img_size: tuple[int, int] = (512, 512)  # INPUT.GT.IMG_SIZE: diffusion target / latent * 8
    u_cond_percent: float = 0.2  # MODEL.U_COND_PERCENT: prompt dropout to learnable_vector

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def paper(cls) -> CFLDConfig:
        """The official defaults (defaults/deepfashion.py at f2ea2a7)."""
        return cls()

    @classmethod
    def tiny(cls) -> CFLDConfig:
        """Same architecture, small widths and depths (the parity reference's reduced geometry).

        The whole UNet trains (``train_all``) because there is no pretrained tiny UNet.
        """
        unet = copy.deepcopy(SD15_UNET_CONFIG)
        unet.update(block_out_channels=[32, 64, 64, 64], attention_head_dim=2, cross_attention_dim=64)
        vae = copy.deepcopy(SD15_VAE_CONFIG)
        vae.update(block_out_channels=[16, 32, 32, 32], layers_per_block=1, norm_num_groups=8)
        return cls(
            swin=SwinConfig(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], drop_path_rate=0.0),
            appearance=AppearanceConfig(
                inner_dims=[32, 32, 32, 64, 64, 64, 128, 128, 128],
                ctx_dims=[32, 32, 32, 64, 64, 64, 64, 64, 64],
                embed_dims=[32, 32, 32, 32, 32, 32, 64, 64, 64],
                heads=[1, 1, 1, 1, 1, 1, 2, 2, 2],
                depth=1,
            ),
            pose=PoseConfig(in_channels=32, channels=[32, 64, 64]),
            decoder=DecoderConfig(n_ctx=16, ctx_dim=64, depth=2, heads=2),
            unet=UNetConfig(config=unet, train_all=True),
            vae=VAEConfig(config=vae),
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CFLDConfig:
        """Build from a (possibly partial) nested dict; missing keys keep the paper defaults.

        A ``base: tiny|paper`` key selects the defaults the dict overrides.
        """
        d = dict(d or {})
        base_name = d.pop("base", "paper")
        if base_name not in ("paper", "tiny"):
            raise ConfigError(f"CFLD config: base must be 'paper' or 'tiny', got {base_name!r}")
        base = cls.paper() if base_name == "paper" else cls.tiny()
        return _merge(base, d, "cfld")

    @classmethod
    def from_yaml(cls, path: str | Path) -> CFLDConfig:
        return cls.from_dict(load_yaml_mapping(path, "CFLD config file", "pass an existing YAML file"))

    @classmethod
    def from_official(cls, cfg_yaml: str, unet_config: dict[str, Any]) -> CFLDConfig:
        """Build from an official yacs YAML override text (as stored in ref-io.pt) and a UNet config."""
        import yaml

        raw = yaml.safe_load(cfg_yaml) or {}
        model = raw.get("MODEL", {})
        cfg = cls.paper()
        sections = {
            "COND_STAGE_CONFIG": cfg.swin,
            "APPEARANCE_GUIDANCE_CONFIG": cfg.appearance,
            "POSE_GUIDANCE_CONFIG": cfg.pose,
            "DECODER_CONFIG": cfg.decoder,
        }
        for name, obj in sections.items():
            for key, value in (model.get(name) or {}).items():
                attr = key.lower()
                if attr == "pretrained_path":
                    continue
                if not hasattr(obj, attr):
                    raise ConfigError(f"official config key MODEL.{name}.{key} is not supported")
                setattr(obj, attr, value)
        cfg.unet.config = {k: v for k, v in unet_config.items() if not k.startswith("_")}
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    # -- derived values ----------------------------------------------------------------------
    @property
    def latent_size(self) -> tuple[int, int]:
        return (self.gt_img_size[0] // 8, self.gt_img_size[1] // 8)

    def validate(self) -> CFLDConfig:
        a = self.appearance
        n = len(a.attn_residual_block_idx)
        for name in ("inner_dims", "ctx_dims", "embed_dims", "heads", "convin_kernel_size"):
            if len(getattr(a, name)) != n:
                raise ConfigError(
                    f"CFLD config: appearance.{name} has {len(getattr(a, name))} entries, "
                    f"attn_residual_block_idx has {n}; give one per HGA branch"
                )
        if len(self.swin.depths) != len(self.swin.num_heads):
            raise ConfigError("CFLD config: swin.depths and swin.num_heads must have the same length")
        if self.swin.last_norm:
            raise ConfigError("CFLD config: swin.last_norm=True (CLIP-style ablation) is not implemented")
        if self.decoder.depth <= 0:
            raise ConfigError("CFLD config: decoder.depth <= 0 (ablations) is not implemented; use >= 1")
        if self.decoder.ctx_dim != self.unet.config.get("cross_attention_dim"):
            raise ConfigError(
                f"CFLD config: decoder.ctx_dim {self.decoder.ctx_dim} must equal the UNet "
                f"cross_attention_dim {self.unet.config.get('cross_attention_dim')}"
            )
        return self


def _merge(obj: Any, d: dict[str, Any], where: str) -> Any:
    """Return ``obj`` (a dataclass) with the values of ``d`` applied; unknown keys are errors."""
    if not isinstance(d, dict):
        raise ConfigError(f"CFLD config: {where} must be a mapping, got {type(d).__name__}")
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(
                f"CFLD config: unknown key {where}.{key}; known keys: {', '.join(sorted(names))}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            setattr(obj, key, _merge(current, value, f"{where}.{key}"))
        elif isinstance(current, dict) and isinstance(value, dict) and key == "config":
            setattr(obj, key, {**current, **value})
        elif isinstance(current, tuple):
            setattr(obj, key, tuple(value))
        else:
            setattr(obj, key, value)
    if isinstance(obj, CFLDConfig):
        obj.validate()
    return obj
