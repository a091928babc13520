"""CFLD checkpoints: the official two-file layout and our safetensors format.

Official (Accelerate ``save_state`` of the official training, the released checkpoint folder):
- ``pytorch_model.bin``: ``learnable_vector``, ``backbone.*``, ``appearance_encoder.*``,
  ``pose_encoder.*``, ``decoder.*``: exactly our non-UNet state_dict keys, including the Swin
  ``relative_position_index``/``attn_mask`` buffers (registered persistent in swin.py);
- ``pytorch_model_1.bin``: ``model.`` + the diffusers UNet keys; ours are ``unet.`` + the same.
Both load with ``torch.load(weights_only=True)``.

Ours: ``config.json`` (CFLDConfig.to_dict) + ``model.safetensors`` (our state_dict keys).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from bench.api import BenchError, ConfigError, DataError, atomic_path, write_json_atomic

OFFICIAL_FILES = ("pytorch_model.bin", "pytorch_model_1.bin")
UNET_PREFIX_OURS = "unet."
UNET_PREFIX_OFFICIAL = "model."
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def official_state_dicts(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Our state_dict split and renamed into the two official files' dicts (same order as official)."""
    main: dict[str, torch.Tensor] = {}
    unet: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key.startswith(UNET_PREFIX_OURS):
            unet[UNET_PREFIX_OFFICIAL + key[len(UNET_PREFIX_OURS) :]] = value
        else:
            main[key] = value
    return main, unet


def to_ours(main: dict[str, torch.Tensor], unet: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official (main, unet) dicts -> one dict with our key names."""
    out = dict(main)
    for key, value in unet.items():
        if not key.startswith(UNET_PREFIX_OFFICIAL):
            raise DataError(
                f"official UNet checkpoint key {key!r} lacks the 'model.' prefix; is this "
                f"{OFFICIAL_FILES[1]} from CFLD's Accelerate save_state?"
            )
        out[UNET_PREFIX_OURS + key[len(UNET_PREFIX_OFFICIAL) :]] = value
    return out


def _resolve_official(folder_or_files: str | os.PathLike | tuple | list) -> tuple[Path, Path]:
    if isinstance(folder_or_files, (tuple, list)):
        if len(folder_or_files) != 2:
            raise ConfigError(f"pass the CFLD checkpoint folder or the two files {OFFICIAL_FILES}")
        paths = (Path(folder_or_files[0]), Path(folder_or_files[1]))
    else:
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise DataError(
                f"CFLD checkpoint folder {folder} does not exist; download the released checkpoint "
                f"(Google Drive link in the YanzuoLu/CFLD README) and put {OFFICIAL_FILES[0]} and "
                f"{OFFICIAL_FILES[1]} in one folder"
            )
        paths = (folder / OFFICIAL_FILES[0], folder / OFFICIAL_FILES[1])
    for p in paths:
        if not p.is_file():
            raise DataError(
                f"CFLD checkpoint file {p} is missing; the official checkpoint folder holds "
                f"{OFFICIAL_FILES[0]} (encoders) and {OFFICIAL_FILES[1]} (UNet) from the YanzuoLu/CFLD "
                f"README's Google Drive link"
            )
    return paths


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file for the user
        raise DataError(f"cannot read CFLD checkpoint {path} with torch.load(weights_only=True): {e}") from e
    if not isinstance(sd, dict):
        raise DataError(f"CFLD checkpoint {path} holds a {type(sd).__name__}, expected a state_dict")
    return sd


OfficialWeights = str | os.PathLike | tuple | list
"""The official weights: their folder, the two file paths, or the two state dicts already in memory
(``(main, unet)`` as ``torch.load`` returns them from ``pytorch_model.bin`` / ``pytorch_model_1.bin``)."""


def official_state(weights: OfficialWeights) -> tuple[dict[str, torch.Tensor], str]:
    """Our state dict from the official weights (see :data:`OfficialWeights`), and where it came from."""
    if isinstance(weights, (tuple, list)) and len(weights) == 2 and all(isinstance(w, dict) for w in weights):
        for name, sd in zip(OFFICIAL_FILES, weights):
            bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
            if bad:
                raise DataError(f"in-memory {name} state dict: {bad[:3]} are not tensors")
        return to_ours(weights[0], weights[1]), "in-memory state dicts"
    main_path, unet_path = _resolve_official(weights)
    return to_ours(_torch_load(main_path), _torch_load(unet_path)), f"{main_path} + {unet_path}"


def load_official(model: torch.nn.Module, weights: OfficialWeights, strict: bool = True) -> torch.nn.Module:
    """Load the official weights (folder, two files or two state dicts) into ``model`` (in place)."""
    state, source = official_state(weights)
    load_state_dict_checked(model, state, strict, source)
    return model


def from_official(weights: OfficialWeights, config: Any = None) -> torch.nn.Module:
    """Build a CFLDModel (paper config by default) straight from the official weights.

    The model is built on the meta device and takes the loaded tensors as its parameters, so the
    paper model costs one copy of the weights and no random init (~40 s saved on a CPU). State
    dicts passed in memory are taken as they are (the model shares their tensors).
    """
    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel

    state, source = official_state(weights)
    with torch.device("meta"):
        model = CFLDModel(config if config is not None else CFLDConfig.paper())
    load_state_dict_checked(model, state, True, source, assign=True)
    return model.eval()


def load_state_dict_checked(
    model: torch.nn.Module, state: dict[str, torch.Tensor], strict: bool, source: str, assign: bool = False
) -> None:
    """``load_state_dict`` with a message naming missing/unexpected/mis-shaped keys and the source."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]  # fmt: skip
    if shapes or (strict and (missing or unexpected)):

        def head(xs: list[str]) -> str:
            return ", ".join(xs[:5]) + (f" ... ({len(xs)} in all)" if len(xs) > 5 else "")

        raise DataError(
            f"CFLD checkpoint {source} does not fit the model config: "
            f"missing {head(missing) or 'none'}; unexpected {head(unexpected) or 'none'}; "
            f"shape mismatches {head(shapes) or 'none'}. Use the config the checkpoint was trained with "
            f"(paper config for the released checkpoint)."
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=strict, assign=assign)


def save_official(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """Write the two official files (for tests and for users of the official code)."""
    main, unet = official_state_dicts(model)
    for name, sd in zip(OFFICIAL_FILES, (main, unet)):
        with atomic_path(Path(folder) / name) as tmp:
            torch.save({k: v.detach().contiguous() for k, v in sd.items()}, tmp)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors encoding of ``tensors``, its header's metadata keys in sorted order.

    Why: the library keeps the metadata in a hash map whose order changes from process to process, so
    two saves of the very same weights differed in their header's bytes (``{"model":..,"format":..}``
    or the reverse), and a retrained model's hash with them. Only the header is rewritten, to the
    same length; the tensors' entries and data stay exactly as the library wrote them."""
    from safetensors.torch import save

    raw = save(tensors, metadata=metadata)
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    ordered = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    ordered.update(header)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:  # the same content cannot grow; refuse rather than shift the data offsets
        raise RuntimeError(f"safetensors header re-encoded to {len(text)} bytes, was {n}")
    return raw[:8] + text + b" " * (n - len(text)) + raw[8 + n :]


def save_pretrained(model: torch.nn.Module, folder: str | os.PathLike) -> None:
    """``config.json`` + ``model.safetensors`` with our key names (same weights, same bytes)."""
    folder = Path(folder)
    # safetensors refuses shared storage; clone so every tensor owns its memory.
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    data = safetensors_bytes(tensors, {"format": "pt", "model": "cfld"})
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        Path(tmp).write_bytes(data)
    write_json_atomic(folder / CONFIG_NAME, model.config.to_dict())


def load_pretrained(folder: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a CFLDModel saved by :func:`save_pretrained`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from methods.cfld.config import CFLDConfig
    from methods.cfld.model import CFLDModel

    folder = Path(folder)
    cfg_path, w_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            hint = (
                " (this looks like an official CFLD folder: load it with load_official)"
                if (folder / OFFICIAL_FILES[0]).is_file()
                else ""
            )
            raise DataError(
                f"CFLD checkpoint file {p} is missing; expected {CONFIG_NAME} + {WEIGHTS_NAME}{hint}"
            )
    try:
        cfg = CFLDConfig.from_dict(json.loads(cfg_path.read_text()))
    except json.JSONDecodeError as e:
        raise DataError(f"CFLD config {cfg_path} is not valid JSON: {e}") from e
    except BenchError as e:
        raise DataError(f"CFLD config {cfg_path}: {e}") from e
    with torch.device("meta"):
        model = CFLDModel(cfg)
    try:
        state = load_file(str(w_path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise DataError(f"cannot read CFLD weights {w_path}: {e}") from e
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise DataError(
            f"CFLD weights {w_path} do not match {cfg_path}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()
