"""CFLDModel: every trained/loaded part of CFLD in one module (the VAE lives outside).

Submodule names are the official ones, so ``state_dict()`` keys equal the official
``pytorch_model.bin`` keys, plus ``unet.*`` which is ``model.*`` of ``pytorch_model_1.bin``
(see checkpoint.py). Registration order reproduces the official key order too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from diffusers import UNet2DConditionModel
from torch import nn

from bench.api import ConfigError
from methods.cfld.appearance_encoder import AppearanceEncoder
from methods.cfld.config import CFLDConfig
from methods.cfld.decoder import Decoder
from methods.cfld.pose_encoder import PoseEncoder
from methods.cfld.swin import SwinBackbone
from methods.cfld.unet import build_unet, install_processors, up_block_transformers


class CFLDModel(nn.Module):
    def __init__(self, config: CFLDConfig, unet: UNet2DConditionModel | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        d = config.decoder
        # torch.randn like the official build_model (it is the CFG "unconditional" prompt).
        self.learnable_vector = nn.Parameter(torch.randn(1, d.n_ctx, d.ctx_dim))
        self.backbone = SwinBackbone(config)
        self.appearance_encoder = AppearanceEncoder(config)
        self.pose_encoder = PoseEncoder(config)
        self.decoder = Decoder(config)
        self.unet = unet if unet is not None else build_unet(config.unet.config)
        self._check_unet()
        install_processors(self.unet)

    def _check_unet(self) -> None:
        ucfg = self.unet.config
        if ucfg.cross_attention_dim != self.config.decoder.ctx_dim:
            raise ConfigError(
                f"CFLD: the UNet's cross_attention_dim {ucfg.cross_attention_dim} differs from the "
                f"decoder ctx_dim {self.config.decoder.ctx_dim}; use a matching UNet or config"
            )
        known = {idx for idx, _ in up_block_transformers(self.unet)}
        missing = sorted(set(self.config.appearance.attn_residual_block_idx) - known)
        if missing:
            raise ConfigError(
                f"CFLD: HGA block indices {missing} do not exist in the UNet (has {sorted(known)})"
            )

    # -- the three conditioning encoders --------------------------------------------------------
    def encode_appearance(self, img_cond: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B,3,256,256) in [-1,1] -> (prompt (B, n_ctx, ctx_dim), HGA biases {key: (B, HW, C)})."""
        _check_input("conditioning image", img_cond, 3, self.config.swin.img_size)
        features = self.backbone(img_cond)
        biases = self.appearance_encoder(features[:-1])
        return self.decoder(features[-1]), biases

    def encode_pose(self, pose_map: torch.Tensor) -> list[torch.Tensor]:
        """(B,21,256,256) cfld21 pose maps -> adapter features, one per cross-attn down block."""
        _check_input("pose map", pose_map, self.config.pose.pose_channels, self.config.pose.img_size)
        return self.pose_encoder(pose_map)

    # -- the denoiser --------------------------------------------------------------------------
    def unet_forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor | int,
        prompt: torch.Tensor,
        pose_features: Sequence[torch.Tensor] | None = None,
        hga_biases: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predicted noise. ``pose_features``/``hga_biases`` None = that path off (zero residual)."""
        return self.unet(
            noisy_latents,
            timesteps,
            encoder_hidden_states=prompt,
            # diffusers pops from this list: hand it a fresh copy.
            down_intrablock_additional_residuals=list(pose_features) if pose_features is not None else None,
            cross_attention_kwargs={"hga_biases": hga_biases} if hga_biases is not None else None,
            return_dict=False,
        )[0]

    # -- training ------------------------------------------------------------------------------
    def set_trainable(self) -> None:
        """Apply CFLD's freezing: everything but the UNet trains; in the UNet only the configured
        attention projections of the configured up-block transformers (all of it with train_all)."""
        self.requires_grad_(True)
        u = self.config.unet
        if u.train_all:
            return
        self.unet.requires_grad_(False)
        wanted = set(u.trainable_block_idx)
        for idx, tb in up_block_transformers(self.unet):
            if idx not in wanted:
                continue
            for attn, flags in (
                (tb.attn1, (u.train_self_attn_q, u.train_self_attn_k, u.train_self_attn_v)),
                (tb.attn2, (u.train_cross_attn_q, u.train_cross_attn_k, u.train_cross_attn_v)),
            ):
                for proj, on in zip((attn.to_q, attn.to_k, attn.to_v), flags):
                    proj.requires_grad_(on)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """The parameters CFLD trains for this config (calls :meth:`set_trainable` first)."""
        self.set_trainable()
        return [p for p in self.parameters() if p.requires_grad]


def _check_input(what: str, x: torch.Tensor, channels: int, size: tuple[int, int]) -> None:
    # The Swin windows, the decoder's kv_pos_embed and the HGA bias shapes are fixed by the config.
    if x.ndim != 4 or x.shape[1] != channels or tuple(x.shape[2:]) != tuple(size):
        raise ConfigError(
            f"CFLD: the {what} must have shape (B, {channels}, {size[0]}, {size[1]}) for this config, "
            f"got {tuple(x.shape)}; resize it (the engine does so from the method's InputSpec)"
        )
