"""What a metric is: the ``Metric`` declaration (plugins get it from ``bench.api``).

Kept apart from the registry's lookup (``registry.py``) and the built-in list (``catalog.py``) so that
code which only declares metrics, such as ``bench.api``, does not depend on which metrics exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.plugins import load_target

PER_PAIR, SET_LEVEL = "per-pair", "set"
HIGHER, LOWER = "higher", "lower"
# What the engine feeds a metric: a view of each decoded pair (``views.py``), the LPIPS network on the
# protocol's network view, or one extractor's features of the whole set (mean/covariance or every vector).
PIXELS, LPIPS, FEATURES = "pixels", "lpips", "features"
STATS, VECTORS = "stats", "vectors"


@dataclass(frozen=True)
class Metric:
    name: str  # results key stem: + the view's suffix (per pair) or "_<reference split>" (set-level)
    kind: str  # PER_PAIR | SET_LEVEL
    direction: str  # HIGHER | LOWER is better
    description: str
    compute: str | Callable[..., Any]  # "module:function" (or the function itself, for plugins)
    consumes: str = PIXELS  # PIXELS | LPIPS (per pair) | FEATURES (set-level)
    extractor: str | None = None  # FEATURES: the feature extractor it reads
    needs: str = STATS  # FEATURES: STATS (running mean, covariance) or VECTORS (every feature vector)
    weights: tuple[str, ...] = ()  # keys of bench.metrics.weights.WEIGHTS it needs
    defaults: Mapping[str, Any] = field(default_factory=dict)  # keyword settings of ``compute``
    protocol_args: Mapping[str, str] = field(default_factory=dict)  # keyword -> Protocol field it reads
    reference: str = ""  # the reference implementation it is checked against
    decimals: int = 4  # shown in tables
    undefined: str | None = None  # per pair: when a value is NaN/inf and why (else never expected)

    def __post_init__(self) -> None:
        bad = []
        if self.kind not in (PER_PAIR, SET_LEVEL):
            bad.append(f"kind {self.kind!r} (expected {PER_PAIR!r} or {SET_LEVEL!r})")
        if self.direction not in (HIGHER, LOWER):
            bad.append(f"direction {self.direction!r} (expected {HIGHER!r} or {LOWER!r})")
        allowed = (FEATURES,) if self.kind == SET_LEVEL else (PIXELS, LPIPS)
        if self.consumes not in allowed:
            bad.append(f"consumes {self.consumes!r} (a {self.kind} metric takes {' or '.join(allowed)})")
        if self.consumes == FEATURES and (not self.extractor or self.needs not in (STATS, VECTORS)):
            bad.append(f"a set-level metric names its extractor and needs {STATS!r} or {VECTORS!r}")
        if bad:
            raise ConfigError(f"metric {self.name!r}: invalid declaration: {'; '.join(bad)}")

    @property
    def family(self) -> str:
        return family(self.name)

    def function(self) -> Callable[..., Any]:
        if callable(self.compute):
            return self.compute
        return load_target(self.compute, f"metric {self.name!r}: its function")

    def settings(self, protocol: Any = None) -> dict[str, Any]:
        """Keyword settings of ``compute``: the defaults, then the protocol fields it declares it reads."""
        out = dict(self.defaults)
        if protocol is not None:
            out.update({kw: getattr(protocol, f) for kw, f in self.protocol_args.items()})
        return out


def family(name: str) -> str:
    """The first token of a metric name (``fid_ptincv3_train`` -> ``fid``)."""
    return name.replace("-", "_").split("_", 1)[0].lower()
