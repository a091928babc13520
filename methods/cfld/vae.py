"""Latent codecs: the space CFLD diffuses in.

- :class:`SDLatentCodec` wraps SD-1.5's frozen ``AutoencoderKL`` exactly as the official
  ``models/vae.py``: ``latent_dist.sample() * scaling_factor`` (0.18215) to encode, the inverse to
  decode; 4 channels at 1/8 of the image size.
- :class:`PixelCodec` is for the tiny config, where no pretrained VAE exists offline: a random VAE
  is not an autoencoder, so we diffuse in pixel space. ``pixel_unshuffle`` by ``factor`` turns a
  (3,H,W) image in [-1,1] into a (3*f^2, H/f, W/f) "latent" losslessly, so the UNet still works
  at 64x64 while the image is f times larger. It has no weights and never needs training.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F


class LatentCodec(Protocol):
    channels: int
    downscale: int

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> dict[str, Any]: ...


class PixelCodec:
    """Lossless pixel-space "VAE": images in [-1,1] <-> pixel-unshuffled tensors (no weights)."""

    def __init__(self, factor: int = 1) -> None:
        if factor < 1:
            raise ValueError(f"pixel codec factor must be >= 1, got {factor}")
        self.factor = int(factor)
        self.channels = 3 * self.factor**2
        self.downscale = self.factor

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.pixel_unshuffle(images, self.factor) if self.factor > 1 else images

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latents, self.factor) if self.factor > 1 else latents

    def to(self, *args: Any, **kwargs: Any) -> PixelCodec:
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": "pixel", "factor": self.factor}


class SDLatentCodec:
    """SD-1.5 ``AutoencoderKL`` (frozen, eval mode), scaled latents as in the official code."""

    def __init__(self, vae: Any, source: str | None = None) -> None:
        self.vae = vae.eval().requires_grad_(False)
        self.source = source
        # The SD-1.5 vae/config.json has no scaling_factor key, so the diffusers default 0.18215 applies.
        self.scaling_factor = float(getattr(vae.config, "scaling_factor", 0.18215) or 0.18215)
        self.channels = int(vae.config.latent_channels)
        self.downscale = 2 ** (len(vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        images = images.to(self.vae.dtype)
        return self.vae.encode(images).latent_dist.sample(generator) * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.vae.dtype)
        return self.vae.decode(latents / self.scaling_factor).sample

    def to(self, *args: Any, **kwargs: Any) -> SDLatentCodec:
        self.vae.to(*args, **kwargs)
        return self

    def describe(self) -> dict[str, Any]:
        return {"kind": "sd_vae", "vae": self.source, "scaling_factor": self.scaling_factor}


def build_codec(spec: dict[str, Any]) -> LatentCodec:
    """Build the codec a ``latent`` config section names: ``{"kind": "pixel", "factor": 2}`` or
    ``{"kind": "sd_vae", "vae": <hub id or folder>}`` (loaded through ``pretrained.load_vae``)."""
    from bench.api import ConfigError

    kind = spec.get("kind", "sd_vae")
    if kind == "pixel":
        return PixelCodec(int(spec.get("factor", 1)))
    if kind == "sd_vae":
        from methods.cfld.pretrained import load_vae

        source = spec.get("vae") or "stable-diffusion-v1-5/stable-diffusion-v1-5"
        return SDLatentCodec(load_vae(source), source=str(source))
    raise ConfigError(f"unknown CFLD latent kind {kind!r}: use 'sd_vae' (SD-1.5 AutoencoderKL) or 'pixel'")


__all__ = ["LatentCodec", "PixelCodec", "SDLatentCodec", "build_codec"]
