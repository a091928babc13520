"""CFLD's classifier-free guidance types (official ``pose_transfer_test.py: sample``).

Each guidance type is a list of UNet branches; a branch picks the prompt (the learnable
"unconditional" vector or the decoder prompt) and switches the pose residuals (down blocks) and the
HGA query biases (up blocks) on or off. All branches of a step run as ONE batched UNet call (the
official code does the same), then :func:`combine` mixes the branch predictions:

=====================  ==========================================  ===============================================
type                   branches (prompt/pose/appearance)            combination
=====================  ==========================================  ===============================================
uc_full                uc(lv,-,-) full(c,p,a)                       uc + s_full (full - uc)
updown_full            updown(lv,p,a) full(c,p,a)                   updown + s_full (full - updown)
down_full              down(lv,p,-) full(c,p,a)                     down + s_full (full - down)
uc_down_full           uc, down(lv,p,-), full                       uc + s_down (down - uc) + s_full (full - down)
uc_down_updown_cdown   uc, down, updown, cdown(c,p,-)               uc + s_down (down - uc) + s_all (updown - down)
                                                                    + s_guid (cdown - down)
uc_down_updown_full    uc, down, updown, full                       uc + s_down (down - uc) + s_all (updown - down)
                                                                    + s_full (full - updown)
full                   full                                         full (no guidance; not an official type)
=====================  ==========================================  ===============================================

``full`` is ours: ``uc_down_full`` at scales 1.0/1.0 is ``uc + (down - uc) + (full - down)``, the full
branch alone, so a config that wants no guidance (the tiny CFLD) runs one branch instead of three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from bench.api import ConfigError


class Branch(NamedTuple):
    """One UNet branch: which prompt, and whether the pose / appearance paths are on."""

    conditional_prompt: bool  # decoder prompt (True) or learnable vector (False)
    pose: bool  # pose-adapter residuals added to the down blocks
    appearance: bool  # HGA biases added to the up-block cross-attention queries


_UC = Branch(False, False, False)
_DOWN = Branch(False, True, False)
_UPDOWN = Branch(False, True, True)
_CDOWN = Branch(True, True, False)
_FULL = Branch(True, True, True)

BRANCHES: dict[str, tuple[Branch, ...]] = {
    "uc_full": (_UC, _FULL),
    "updown_full": (_UPDOWN, _FULL),
    "down_full": (_DOWN, _FULL),
    "uc_down_full": (_UC, _DOWN, _FULL),
    "uc_down_updown_cdown": (_UC, _DOWN, _UPDOWN, _CDOWN),
    "uc_down_updown_full": (_UC, _DOWN, _UPDOWN, _FULL),
    "full": (_FULL,),
}
DEFAULT_GUIDANCE = "uc_down_full"


@dataclass(frozen=True)
class GuidanceScales:
    """The official TEST.*_SCALE values (all 2.0). ``up`` is defined there but used by no type."""

    full: float = 2.0  # TEST.FULL_GUIDANCE_SCALE
    down: float = 2.0  # TEST.DOWN_BLOCK_GUIDANCE_SCALE
    all: float = 2.0  # TEST.ALL_BLOCK_GUIDANCE_SCALE
    guidance: float = 2.0  # TEST.GUIDANCE_SCALE
    up: float = 2.0  # TEST.UP_BLOCK_GUIDANCE_SCALE (unused by the official sample())


def check_guidance_type(name: str) -> str:
    if name not in BRANCHES:
        raise ConfigError(
            f"unknown CFLD guidance type {name!r}; choose one of {', '.join(BRANCHES)} "
            "(set 'guidance_type' in the method config)"
        )
    return name


def num_branches(guidance_type: str) -> int:
    return len(BRANCHES[check_guidance_type(guidance_type)])


def batch_conditions(
    guidance_type: str,
    prompt: torch.Tensor,
    uncond_prompt: torch.Tensor,
    pose_features: list[torch.Tensor],
    hga_biases: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, torch.Tensor]]:
    """Stack the conditions of every branch along the batch: branch k holds rows [k*B, (k+1)*B).

    ``uncond_prompt`` is the learnable vector, broadcastable to ``prompt`` (B,N,D). A switched-off
    path gets zeros, which adds nothing inside the UNet (exactly the official behaviour).
    """
    branches = BRANCHES[check_guidance_type(guidance_type)]
    uncond = uncond_prompt.to(prompt.dtype).expand_as(prompt)
    prompts = torch.cat([prompt if b.conditional_prompt else uncond for b in branches])
    poses = [torch.cat([f if b.pose else torch.zeros_like(f) for b in branches]) for f in pose_features]
    biases = {
        k: torch.cat([v if b.appearance else torch.zeros_like(v) for b in branches])
        for k, v in hga_biases.items()
    }
    return prompts, poses, biases


def combine(
    guidance_type: str, noise_pred: torch.Tensor, scales: GuidanceScales = GuidanceScales()
) -> torch.Tensor:
    """Mix the branch predictions of one batched UNet call (official formulas, same order)."""
    chunks = noise_pred.chunk(num_branches(guidance_type))
    if guidance_type == "full":
        return chunks[0]
    if guidance_type == "uc_full":
        uc, full = chunks
        return uc + scales.full * (full - uc)
    if guidance_type == "updown_full":
        updown, full = chunks
        return updown + scales.full * (full - updown)
    if guidance_type == "down_full":
        down, full = chunks
        return down + scales.full * (full - down)
    if guidance_type == "uc_down_full":
        uc, down, full = chunks
        return uc + scales.down * (down - uc) + scales.full * (full - down)
    if guidance_type == "uc_down_updown_cdown":
        uc, down, updown, cdown = chunks
        return (
            uc + scales.down * (down - uc) + scales.all * (updown - down) + scales.guidance * (cdown - down)
        )
    uc, down, updown, full = chunks  # uc_down_updown_full
    return uc + scales.down * (down - uc) + scales.all * (updown - down) + scales.full * (full - updown)


__all__ = [
    "BRANCHES",
    "DEFAULT_GUIDANCE",
    "Branch",
    "GuidanceScales",
    "batch_conditions",
    "check_guidance_type",
    "combine",
    "num_branches",
]
