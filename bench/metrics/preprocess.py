"""Image decoding and the per-protocol resize rules (protocols.md §2-§6).

Every image is decoded once into uint8 (H, W, 3). The views metrics need are derived from it:
- the *eval view* (uint8 at the protocol's eval size; SSIM/PSNR compare these),
- the *metric view* (float32 on the 0..255 scale) fed to Inception and LPIPS; for PIDM this is
  ``cv2.resize`` (INTER_LINEAR, no antialias) of the float image, as PIDM's scripts do.
Keeping the 0..255 scale lets each metric divide exactly as its reference script does
(``x / 255`` or ``x / 127.5 - 1``), so no extra rounding is introduced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.errors import DataError

RESIZE_RULES = ("pil_bicubic", "torch_bicubic_aa_trunc", "error")


def decode(path: str | Path, *, generated: bool) -> np.ndarray:
    """Decode an image to uint8 (H, W, 3).

    Generated images must be RGB: a grayscale or RGBA file means the folder was not written by
    ``pgpis generate`` and converting it would guess (e.g. drop transparency). Dataset images
    follow the reference loaders (``PIL.Image.convert("RGB")``).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if generated and img.mode != "RGB":
                raise DataError(
                    f"{path}: generated image has mode {img.mode} (expected RGB); regenerate it with "
                    "`pgpis generate` or convert the folder to RGB PNGs explicitly"
                )
            # np.array copies (writable: torch.from_numpy warns on read-only arrays); an RGB image needs
            # no convert(), which would copy it once more (~0.3 ms of a 256x176 PNG's 1.5 ms decode)
            arr = np.array(img if img.mode == "RGB" else img.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: image is corrupt or unreadable ({err}); regenerate or replace it") from None
    return np.ascontiguousarray(arr)


def resize_uint8(img: np.ndarray, size: tuple[int, int], rule: str, path: str | Path = "") -> np.ndarray:
    """Resize uint8 (H, W, 3) to ``size`` (H, W) by a named rule; a no-op at the right size."""
    if tuple(img.shape[:2]) == tuple(size):
        return img
    if rule == "pil_bicubic":
        # torchvision Resize(BICUBIC, antialias=True) on a PIL image is exactly this call.
        from PIL import Image

        return np.array(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))
    if rule == "torch_bicubic_aa_trunc":
        # CFLD's generated-image path: bicubic+antialias on [0,1], x255, clamp, truncate to uint8.
        x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).to(torch.float32) / 255.0
        x = F.interpolate(x, size=tuple(size), mode="bicubic", antialias=True)
        x = (x.float() * 255.0).clamp(0, 255).to(torch.uint8)
        return x[0].permute(1, 2, 0).contiguous().numpy()
    if rule == "error":
        raise DataError(
            f"{path}: image is {img.shape[0]}x{img.shape[1]} but this protocol scores {size[0]}x{size[1]} "
            "images without resizing; generate at that size"
        )
    raise ValueError(f"unknown resize rule {rule!r}; expected one of {RESIZE_RULES}")


def metric_view(img: np.ndarray, cv2_size: tuple[int, int] | None) -> np.ndarray:
    """float32 (H, W, 3) on the 0..255 scale; PIDM: ``cv2.resize(img.astype(float32), (W, H))``."""
    x = img.astype(np.float32)
    if cv2_size is not None and tuple(x.shape[:2]) != tuple(cv2_size):
        import cv2

        x = cv2.resize(x, (cv2_size[1], cv2_size[0]))  # INTER_LINEAR is cv2's default
    return x


def pad40(x255: torch.Tensor) -> torch.Tensor:
    """DPTN ``pad_256`` / PATN ``addBounding``: paste (B, 3, 256, 176) into white 256x256 at cols 40:216."""
    b, c, h, w = x255.shape
    if (h, w) != (256, 176):
        raise DataError(
            f"40-px white padding is defined for 256x176 images, got {h}x{w}; use another protocol"
        )
    out = torch.full((b, c, 256, 256), 255.0, dtype=x255.dtype, device=x255.device)
    out[..., 40:216] = x255
    return out


def to_chw(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
