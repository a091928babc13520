"""Method discovery through the entry-point group ``pgpis_bench.methods``.

Entry points are read lazily: listing methods imports nothing, and a method's module is
imported only when that method is asked for, so a broken plugin cannot break the others.
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint
from typing import Any

from bench.api import Method
from bench.errors import ConfigError
from bench.plugins import group_entry_points

GROUP = "pgpis_bench.methods"


def _entry_points() -> dict[str, EntryPoint]:
    return group_entry_points(GROUP, "method")


def available_methods() -> dict[str, str]:
    """Map of method name -> ``module:Class`` target, without importing anything."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def get_method_class(name: str) -> type[Method]:
    eps = _entry_points()
    if name not in eps:
        close = difflib.get_close_matches(name, list(eps), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(eps)) or "none"
        raise ConfigError(
            f"unknown method {name!r}.{hint} Installed methods: {known}. "
            f"A plugin registers one under the entry-point group {GROUP!r}."
        )
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"entry point {name!r} -> {eps[name].value} is not a bench.api.Method subclass")
    return cls


def load_method(
    name: str, config: dict[str, Any] | None = None, checkpoint: str | None = None, device: str = "cpu"
) -> Method:
    return get_method_class(name).from_config(config or {}, checkpoint=checkpoint, device=device)
