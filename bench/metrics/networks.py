"""The networks a protocol's metrics need, each built once and shared by every metric that reads it.

Feature extractors (FID's Inceptions, and any extractor a set-level metric declares) and LPIPS
backbones are resolved through ``weights.py`` (sha256-checked), loaded with ``weights_only=True``
and moved to the device. A missing weight makes every metric that needs it unavailable, with the
file, URL and destination in the reason (or, with ``strict``, an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.errors import MissingWeightError
from bench.memory import keep_freed_memory
from bench.metrics import extractors, registry, weights
from bench.metrics.device import resolve_device
from bench.metrics.lpips_metric import BACKBONE_WEIGHT, Lpips, head_path
from bench.metrics.options import EvalOptions
from bench.metrics.protocols import Protocol, ScoredMetric


@dataclass
class Networks:
    extractors: dict[str, torch.nn.Module] = field(default_factory=dict)
    lpips: dict[str, Lpips] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    unverified: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # metric results name -> reason
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def extractor_weight(ext: str) -> str:
    """The weights key of a feature extractor."""
    return extractors.get_extractor(ext).weight


def build_extractor(name: str, path: Path) -> torch.nn.Module:
    return extractors.build(name, path)


def extractor_weight_file(ext: str) -> str:
    return weights.WEIGHTS[extractor_weight(ext)].filename


def _resolve(key: str, opts: EvalOptions, nets: Networks, metrics: Sequence[str]) -> Path | None:
    try:
        w = weights.resolve(key, allow_unverified=opts.allow_unverified_weights)
    except MissingWeightError as err:
        if opts.strict:
            raise
        nets.unavailable.update(dict.fromkeys(metrics, str(err)))
        return None
    nets.weights[w.spec.filename] = w.sha256
    if not w.verified:
        nets.unverified.append(w.spec.filename)
    return w.path


def _extra_weights(metric: registry.Metric) -> tuple[str, ...]:
    """Weights a metric declares beyond its extractor's or LPIPS backbone's (resolved and recorded too)."""
    own = {extractor_weight(metric.extractor)} if metric.extractor else set()
    if metric.consumes == registry.LPIPS:
        own.add(BACKBONE_WEIGHT[metric.settings()["net"]])
    return tuple(w for w in metric.weights if w not in own)


def load_networks(protocol: Protocol, opts: EvalOptions, extractors: Sequence[str] | None = None) -> Networks:
    """Build the networks of ``protocol``'s metrics (or only ``extractors``); a missing weight makes the
    metrics that need it unavailable (or raises if strict)."""
    nets = Networks(device=resolve_device(opts.device))
    if nets.device.type == "cpu":
        keep_freed_memory()  # the activations' buffers are reused instead of re-faulted (bench/memory.py)
    scored = [s for s in protocol.scored_metrics() if extractors is None or s.metric.extractor in extractors]
    users: dict[str, list[str]] = {}
    for s in scored:
        if s.metric.consumes == registry.FEATURES:
            users.setdefault(s.metric.extractor or "", []).append(s.result_name)
    for ext in users if extractors is None else [e for e in extractors if e in users]:
        path = _resolve(extractor_weight(ext), opts, nets, users[ext])
        if path is not None:
            nets.extractors[ext] = build_extractor(ext, path).to(nets.device)
    for s in scored:
        if s.metric.consumes == registry.LPIPS:
            net = s.metric.settings()["net"]
            path = _resolve(BACKBONE_WEIGHT[net], opts, nets, [s.result_name])
            if path is not None:
                nets.lpips[net] = Lpips(net, path).to(nets.device)
                head = head_path(net)
                nets.weights[f"lpips/v0.1/{head.name}"] = weights.sha256_file(head)
        for key in _extra_weights(s.metric):
            _resolve(key, opts, nets, [s.result_name])
    return nets


def available(scored: ScoredMetric, nets: Networks) -> bool:
    """Whether every network of ``scored`` is loaded (else its reason is in ``nets.unavailable``)."""
    if scored.result_name in nets.unavailable:
        return False
    if scored.metric.consumes == registry.FEATURES:
        return scored.metric.extractor in nets.extractors
    if scored.metric.consumes == registry.LPIPS:
        return scored.metric.settings()["net"] in nets.lpips
    return True
