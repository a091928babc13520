"""Base weights CFLD starts from: SD-1.5 UNet and VAE, Swin-B ImageNet-22k->1k.

Every loader accepts a local path or (for SD) a Hugging Face hub id, and offline raises a
``MissingWeightError`` naming each missing file, where to put it and where to get it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.api import DataError, MissingWeightError

SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SWIN_FILE = "swin_base_patch4_window12_384_22kto1k.pth"
SWIN_URL = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_base_patch4_window12_384_22kto1k.pth"
_WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _local_component(path: Path, subfolder: str) -> Path | None:
    """The folder holding the component's config.json: ``path`` itself or ``path/subfolder``."""
    for cand in (path, path / subfolder):
        if (cand / "config.json").is_file():
            return cand
    return None


def _missing_sd(where: str, subfolder: str, detail: str = "") -> MissingWeightError:
    files = " and ".join(f"{subfolder}/{n}" for n in ("config.json", f"{_WEIGHT_NAMES[0]} (or .bin)"))
    return MissingWeightError(
        f"SD-1.5 {subfolder} weights not found at {where}{': ' + detail if detail else ''}. Put {files} "
        f"in that folder (or pass the {subfolder} folder itself); get them from the Hugging Face repo "
        f"{SD15_HUB_ID} (e.g. `huggingface-cli download {SD15_HUB_ID} --include '{subfolder}/*'`), "
        f"or run online with the hub id."
    )


def _load_component(cls: Any, path_or_hub_id: str | os.PathLike, subfolder: str, **kw: Any) -> Any:
    path = Path(path_or_hub_id)
    if path.exists():
        folder = _local_component(path, subfolder)
        if folder is None:
            raise _missing_sd(str(path), subfolder, "no config.json")
        if not any((folder / n).is_file() for n in _WEIGHT_NAMES):
            raise _missing_sd(str(folder), subfolder, f"no {_WEIGHT_NAMES[0]} or {_WEIGHT_NAMES[1]}")
        try:
            return cls.from_pretrained(folder, **kw)
        except Exception as e:  # noqa: BLE001 - a refused pickle, a damaged file, a bad config: all the user's file
            weights = next(folder / n for n in _WEIGHT_NAMES if (folder / n).is_file())
            raise DataError(
                f"{weights}: cannot load the SD-1.5 {subfolder} weights ({str(e).strip().splitlines()[0][:300]}). "
                "Weights are loaded safely (safetensors, or torch.load(weights_only=True)), so a .bin holding "
                "pickled code or a damaged file is refused. Replace the folder's files with clean copies, preferably "
                f"{subfolder}/{_WEIGHT_NAMES[0]} from the Hugging Face repo {SD15_HUB_ID}"
            ) from None
    hub_id = str(path_or_hub_id)
    if hub_id.count("/") != 1 or hub_id.startswith((".", "/")):
        raise _missing_sd(hub_id, subfolder, "neither an existing folder nor a hub id 'owner/name'")
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return cls.from_pretrained(hub_id, subfolder=subfolder, local_files_only=offline, **kw)
    except (OSError, ValueError) as e:  # diffusers raises OSError/EnvironmentError when files are absent
        raise _missing_sd(f"hub id {hub_id} (HF cache {os.environ.get('HF_HOME', '~/.cache/huggingface')})",
                          subfolder, str(e).splitlines()[0]) from e  # fmt: skip


def load_unet(path_or_hub_id: str | os.PathLike = SD15_HUB_ID, **kw: Any) -> Any:
    """SD-1.5 ``UNet2DConditionModel`` from a hub id, an SD folder (with ``unet/``) or a unet folder."""
    from diffusers import UNet2DConditionModel

    return _load_component(UNet2DConditionModel, path_or_hub_id, "unet", **kw)


def load_vae(path_or_hub_id: str | os.PathLike = SD15_HUB_ID, **kw: Any) -> Any:
    """SD-1.5 ``AutoencoderKL`` (frozen in CFLD), same path rules as :func:`load_unet`."""
    from diffusers import AutoencoderKL

    return _load_component(AutoencoderKL, path_or_hub_id, "vae", **kw)


def build_vae(vae_config: dict[str, Any]) -> Any:
    """A randomly initialised AutoencoderKL from a config dict (tiny config / tests)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config({k: v for k, v in vae_config.items() if not k.startswith("_")})


def resize_bias_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """(S1*S1, heads) relative-position table -> (size*size, heads), bicubic as the official loader."""
    n1, heads = table.shape
    s1 = int(round(n1**0.5))
    grid = table.permute(1, 0).reshape(1, heads, s1, s1)
    return F.interpolate(grid, size=(size, size), mode="bicubic").reshape(heads, size * size).permute(1, 0)


def load_swin_imagenet(backbone: torch.nn.Module, path: str | os.PathLike) -> list[str]:
    """Load the Swin ImageNet checkpoint into ``backbone`` (a SwinBackbone); returns ignored file keys.

    As the official ``load_pretrained``: take ``["model"]``, drop the recomputed buffers
    (``relative_position_index``, ``relative_coords_table``, ``attn_mask``), interpolate each
    ``relative_position_bias_table`` bicubically to the backbone's window (12 -> 16, and -> 8 for the
    clamped last stage). Unlike it, every backbone parameter must be present in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightError(
            f"Swin weights {path} not found. Put {SWIN_FILE} there (the official code expects "
            f"pretrained_models/swin/{SWIN_FILE}); download it from {SWIN_URL}"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file for the user
        raise DataError(f"cannot read Swin weights {path} with torch.load(weights_only=True): {e}") from e
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise DataError(f"Swin weights {path} hold no state_dict (expected a dict with key 'model')")
    drop = ("relative_position_index", "relative_coords_table", "attn_mask")
    state = {k: v for k, v in state.items() if not any(d in k for d in drop)}
    own = backbone.state_dict()
    for k, v in list(state.items()):
        if k.endswith("relative_position_bias_table") and k in own and v.shape != own[k].shape:
            if v.shape[1] != own[k].shape[1]:
                raise DataError(
                    f"Swin weights {path}: {k} has {v.shape[1]} heads, the model {own[k].shape[1]}"
                )
            state[k] = resize_bias_table(v, int(round(own[k].shape[0] ** 0.5)))
    params = dict(backbone.named_parameters())
    missing = [k for k in params if k not in state]
    bad = [k for k in params if k in state and state[k].shape != params[k].shape]
    if missing or bad:
        raise DataError(
            f"Swin weights {path} do not fit the backbone config: missing {missing[:5]}, "
            f"shape mismatches {bad[:5]}; use {SWIN_FILE} with the paper config (Swin-B)"
        )
    backbone.load_state_dict({k: state[k] for k in params}, strict=False)
    return sorted(k for k in state if k not in params)
