"""The metric registry: every metric declared once, read by the engine, the report, the docs and the CLI.

A metric is a ``Metric`` declaration: its name, kind (per pair, or set-level over all images), what it
consumes (a protocol's image view, the LPIPS network view, or a feature extractor's features), its
direction, the weights it needs, its default settings and the function that computes it
(``"module:function"``, imported only when a run scores it). The built-in declarations are listed in
``catalog.py``; a package outside the repository adds one through the entry-point group
``pgpis_bench.metrics`` (entry-point name = metric name, value = ``module:ATTRIBUTE`` holding a
``bench.api.Metric``), exactly as methods use ``pgpis_bench.methods``. Entry points are loaded only
when their metric is asked for, so a broken plugin cannot break the others.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import EntryPoint

from bench.errors import ConfigError
from bench.metrics.declaration import (
    FEATURES,
    HIGHER,
    LOWER,
    LPIPS,
    PER_PAIR,
    PIXELS,
    SET_LEVEL,
    STATS,
    VECTORS,
    Metric,
    family,
)
from bench.plugins import group_entry_points

GROUP = "pgpis_bench.metrics"
__all__ = [
    "FEATURES", "GROUP", "HIGHER", "LOWER", "LPIPS", "PER_PAIR", "PIXELS", "SET_LEVEL", "STATS", "VECTORS",
    "Metric", "all_metrics", "builtin", "decimals", "direction", "family", "family_order", "for_result",
    "get_metric", "listing", "plugin_names",
]  # fmt: skip


def builtin() -> dict[str, Metric]:
    from bench.metrics.catalog import BUILTIN

    return {m.name: m for m in BUILTIN}


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return group_entry_points(GROUP, "metric")


@cache
def _load_plugin(name: str) -> Metric:
    ep = _entry_points()[name]
    try:
        metric = ep.load()
    except Exception as err:  # a plugin's import error must name the plugin, not crash the run
        raise ConfigError(f"metric plugin {name!r} ({ep.value}) failed to load: {err}") from None
    if not isinstance(metric, Metric):
        raise ConfigError(f"entry point {name!r} -> {ep.value} is not a bench.api.Metric declaration")
    if metric.name != name:
        raise ConfigError(
            f"entry point {name!r} -> {ep.value} declares the metric {metric.name!r}; use one name"
        )
    if metric.name in builtin():
        raise ConfigError(f"metric plugin {ep.value} redeclares the built-in metric {name!r}; rename it")
    return metric


def plugin_names() -> list[str]:
    return sorted(n for n in _entry_points() if n not in builtin())


def get_metric(name: str) -> Metric:
    """The declaration of ``name`` (built in, else an installed plugin); a clear error if unknown."""
    found = builtin().get(name)
    if found is not None:
        return found
    if name in _entry_points():
        return _load_plugin(name)
    known = [*builtin(), *plugin_names()]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"unknown metric {name!r}.{hint} Registered metrics: {', '.join(known)}. A package adds one "
        f"under the entry-point group {GROUP!r}."
    )


def all_metrics(load_plugins: bool = True) -> dict[str, Metric]:
    """Built-in metrics in catalog order, then installed plugins (by name)."""
    out = builtin()
    if load_plugins:
        out.update({n: _load_plugin(n) for n in plugin_names()})
    return out


def for_result(result_name: str) -> Metric | None:
    """The declaration a results key comes from: the longest registered name equal to it or followed by
    ``_`` (a view suffix or the reference split); None if no registered metric matches."""
    names = [*builtin(), *_entry_points()]
    matches = [n for n in names if result_name == n or result_name.startswith(n + "_")]
    if not matches:
        return None
    best = max(matches, key=len)
    try:
        return get_metric(best)
    except ConfigError:
        return None  # a broken plugin: its direction is unknown, the report still renders


def direction(result_name: str) -> str | None:
    """HIGHER, LOWER or None for a results key: its declaration's, else that of its family when every
    registered metric of the family agrees (``lpips_alex`` in an old file is still lower-is-better)."""
    metric = for_result(result_name)
    if metric is not None:
        return metric.direction
    fam = {m.direction for m in builtin().values() if m.family == family(result_name)}
    return fam.pop() if len(fam) == 1 else None


def decimals(result_name: str) -> int:
    metric = for_result(result_name)
    if metric is not None:
        return metric.decimals
    fam = {m.decimals for m in builtin().values() if m.family == family(result_name)}
    return fam.pop() if len(fam) == 1 else 4


def family_order() -> list[str]:
    """Metric families in the order they are declared (tables put columns in this order)."""
    return list(dict.fromkeys(m.family for m in all_metrics(load_plugins=False).values()))


def listing(width: int = 24) -> str:
    """One line per registered metric (name, kind, direction, what it reads): the CLI help reads this.
    A plugin that fails to load is listed with its error instead of breaking the help."""
    lines = []
    for name in [*builtin(), *plugin_names()]:
        try:
            m = get_metric(name)
        except ConfigError as err:
            lines.append(f"  {name:<{width}} (plugin failed to load: {err})")
            continue
        reads = (
            f"{m.extractor} features"
            if m.consumes == FEATURES
            else ("LPIPS view" if m.consumes == LPIPS else "image view")
        )
        arrow = "↑" if m.direction == HIGHER else "↓"
        origin = "" if name in builtin() else " [plugin]"
        lines.append(f"  {name:<{width}} {arrow} {m.kind:<8} {reads}{origin}")
    return "\n".join(lines)
