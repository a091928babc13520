"""Noise schedulers for CFLD sampling and training.

The official code loads SD-1.5's ``scheduler_config.json`` (written for ``EulerDiscreteScheduler``)
into ``DDPMScheduler`` and samples 50 ancestral steps. We keep those values here rather than read a
file, so sampling needs no download; DDIM and DPM-Solver++ share the same noise schedule and can be
selected with their own step count.
"""

from __future__ import annotations

from typing import Any

from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, SchedulerMixin

from bench.api import ConfigError

# SD-1.5 scheduler_config.json values that the three schedulers understand (reference cfld.md §5).
SD15_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
    "steps_offset": 1,
}

SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    # Official default: DDPM ancestral sampling (fixed_small variance), no clipping.
    "ddpm": (DDPMScheduler, {"clip_sample": False}),
    # Deterministic DDIM (eta = 0), as in SD-1.5's DDIM setup.
    "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),
    # DPM-Solver++ (2nd order multistep): good quality at 20 steps.
    "dpmsolver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
}

DEFAULT_SCHEDULER = "ddpm"
DEFAULT_STEPS = 50


def make_scheduler(name: str = DEFAULT_SCHEDULER, **overrides: Any) -> SchedulerMixin:
    """A fresh scheduler ``name`` with SD-1.5's schedule (``overrides`` replace single values)."""
    key = name.lower().replace("_", "").replace("-", "")
    aliases = {
        "ddpm": "ddpm",
        "ddim": "ddim",
        "dpmsolver++": "dpmsolver++",
        "dpmsolver": "dpmsolver++",
        "dpm++": "dpmsolver++",
    }
    if key not in aliases:
        raise ConfigError(
            f"unknown CFLD scheduler {name!r}; choose one of {', '.join(SCHEDULERS)} "
            "(set 'scheduler' in the method config)"
        )
    cls, extra = SCHEDULERS[aliases[key]]
    return cls(**{**SD15_SCHEDULE, **extra, **overrides})


def fresh_copy(scheduler: SchedulerMixin) -> SchedulerMixin:
    """A new scheduler with the same config: multistep solvers keep per-run state, so each
    sampling call needs its own instance."""
    return type(scheduler).from_config(scheduler.config)


__all__ = [
    "DEFAULT_SCHEDULER",
    "DEFAULT_STEPS",
    "SCHEDULERS",
    "SD15_SCHEDULE",
    "fresh_copy",
    "make_scheduler",
]
