"""How a protocol uses registered metrics: each per-pair metric on an image view, each set-level one
against the reference split; resolved to the results keys the engine reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import ConfigError
from bench.metrics import registry
from bench.metrics.views import get_view


@dataclass(frozen=True)
class MetricUse:
    """A registered metric as a protocol uses it: per pair, on one image view."""

    metric: str
    view: str = "eval"

    @property
    def result_name(self) -> str:
        return self.metric + get_view(self.view).suffix


def on_view(view: str, *metrics: str) -> tuple[MetricUse, ...]:
    return tuple(MetricUse(m, view) for m in metrics)


def as_use(entry: str | MetricUse) -> MetricUse:
    return entry if isinstance(entry, MetricUse) else MetricUse(entry)


@dataclass(frozen=True)
class ScoredMetric:
    """One results key of a protocol: the declaration, the view it reads and the name it is reported under."""

    metric: registry.Metric
    view: str
    result_name: str


def result_name(use: MetricUse, split: str) -> str:
    """A set-level metric is reported with the reference split; a per-pair one with its view's suffix."""
    metric = registry.get_metric(use.metric)
    return f"{metric.name}_{split}" if metric.kind == registry.SET_LEVEL else use.result_name


def resolve(protocol: str, entries: Sequence[MetricUse], split: str) -> list[ScoredMetric]:
    """The results keys of ``entries``, in results order: set-level first, then per pair (LPIPS, then
    the pixel metrics), each group in the order listed. Each name must be registered and each view
    must suit its metric."""
    out: list[ScoredMetric] = []
    for use in entries:
        metric = registry.get_metric(use.metric)
        if use.view != "eval" and metric.consumes != registry.PIXELS:
            raise ConfigError(
                f"protocol {protocol}: {metric.name} reads the network view, not the {use.view!r} view"
            )
        name = result_name(use, split)
        if name in {s.result_name for s in out}:
            raise ConfigError(f"protocol {protocol}: metric {name} is listed twice")
        out.append(ScoredMetric(metric, use.view, name))
    rank = {registry.SET_LEVEL: 0, registry.LPIPS: 1}
    return sorted(out, key=lambda s: rank.get(s.metric.kind, rank.get(s.metric.consumes, 2)))
