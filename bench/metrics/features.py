"""One extractor's features of a set of images, as the set-level metrics consume them.

The engine feeds every image's features once into a ``FeatureCollector`` per extractor: running
float64 mean/covariance sums always (FID and other Fréchet distances), and the feature vectors
themselves only when a metric of the protocol declares it needs them (``registry.VECTORS``: KID,
precision/recall). ``FeatureSet`` is what a set-level metric's function receives for each side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from bench.errors import DataError
from bench.metrics.fid import RunningStats


@dataclass
class FeatureSet:
    mu: np.ndarray | None
    sigma: np.ndarray | None
    vectors: np.ndarray | None = None  # (N, D) float32, when a metric needs them
    source: str = ""  # where they came from, for error messages
    derived: dict = field(default_factory=dict)  # results computed from this set, shared by several metrics

    def require_vectors(self, metric: str) -> np.ndarray:
        if self.vectors is None:
            raise DataError(
                f"{metric} needs every feature vector, but {self.source or 'these statistics'} hold only the "
                "mean and covariance; recompute them with `pgpis refstats` under this protocol"
            )
        return self.vectors


class FeatureCollector:
    """Running statistics (sized by the first batch: each extractor has its own dimension) and, when
    asked, every vector."""

    def __init__(self, device: torch.device, keep_vectors: bool) -> None:
        self.device = device
        self.running: RunningStats | None = None
        self._vectors: list[np.ndarray] | None = [] if keep_vectors else None
        self._rows: list[np.ndarray] = []

    def update(self, feats: torch.Tensor, rows: np.ndarray | None = None) -> None:
        """Add a batch of features; ``rows``: their images' positions in the set, when they do not
        arrive in order (the vectors are returned in that order; subsets of KID and PRDC depend on it)."""
        if self.running is None:
            self.running = RunningStats(feats.shape[-1], self.device)
        self.running.update(feats)
        if self._vectors is not None:
            self._vectors.append(feats.detach().to("cpu", torch.float32).numpy())
            if rows is not None:
                self._rows.append(np.asarray(rows))

    def finalize(self, what: str, source: str = "") -> FeatureSet:
        mu, sigma = (self.running or RunningStats(0, self.device)).finalize(what)
        vectors = None
        if self._vectors is not None:
            vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, mu.size), np.float32)
            if self._rows:
                rows = np.concatenate(self._rows)
                if rows.shape[0] != vectors.shape[0]:
                    raise ValueError("FeatureCollector: rows were given for some batches only")
                vectors = vectors[np.argsort(rows, kind="stable")]
        return FeatureSet(mu, sigma, vectors, source)
