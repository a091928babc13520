"""Reading a plugin entry-point group (methods: ``pgpis_bench.methods``, metrics: ``pgpis_bench.metrics``)
and resolving the ``"module:attribute"`` targets declarations name.

Only the entry points are read, nothing is imported: a plugin's module loads when its name is asked
for, so a broken plugin cannot break the others.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from bench.errors import ConfigError


def group_entry_points(group: str, kind: str) -> dict[str, EntryPoint]:
    """Name -> entry point of ``group``. Two installed packages registering one name with different
    targets is an error naming both (``kind`` says what the name is: "method", "metric")."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            raise ConfigError(
                f"two installed packages register the {kind} {ep.name!r}: {found[ep.name].value} and "
                f"{ep.value}; uninstall one of them"
            )
        found[ep.name] = ep
    return found


def load_target(target: str, what: str) -> Any:
    """The attribute a ``"module:attribute"`` string names, imported now; a clear error naming
    ``what`` declared it when the module or the attribute is missing."""
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{what}: cannot load {target!r} ({err})") from None
