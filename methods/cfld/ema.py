"""Exponential moving average of the trainable weights (``ema_decay`` in the train config).

Sampling from an EMA of the weights rather than the last iterate removes most of the step-to-step
noise of a short, high-learning-rate run (the tiny config). The official recipe has no EMA, so the
paper train config leaves it off. The object is registered with ``accelerator.register_for_checkpointing``:
``state_dict``/``load_state_dict`` make it part of every checkpoint, so a resumed run continues
the very same average.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class EMA:
    """Shadow copies of ``params`` updated as ``shadow = d * shadow + (1 - d) * param``.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
    average is not dominated by the random initial weights in a run of a few hundred steps.
    """

    def __init__(self, params: Iterable[nn.Parameter], decay: float) -> None:
        self.params = list(params)
        self.decay = float(decay)
        self.updates = 0
        self.shadow = [p.detach().clone().float() for p in self.params]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        for s, p in zip(self.shadow, self.params, strict=True):
            s.mul_(d).add_(p.detach().float(), alpha=1.0 - d)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, params: Iterable[nn.Parameter]) -> None:
        """Write the averages into ``params`` (the same parameters, e.g. of the unwrapped model)."""
        params = list(params)
        if len(params) != len(self.shadow):
            raise ValueError(f"EMA holds {len(self.shadow)} tensors, got {len(params)} parameters")
        for s, p in zip(self.shadow, params, strict=True):
            p.copy_(s.to(p.dtype))

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, object]) -> None:
        shadow = list(state["shadow"])  # type: ignore[arg-type]
        if len(shadow) != len(self.shadow):
            raise ValueError(
                f"EMA checkpoint holds {len(shadow)} tensors, this model trains {len(self.shadow)}"
            )
        self.decay = float(state["decay"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[call-overload]
        self.shadow = [
            t.detach().clone().float().to(s.device) for t, s in zip(shadow, self.shadow, strict=True)
        ]


__all__ = ["EMA"]
