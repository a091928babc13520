"""Named evaluation protocols: every choice that changes a number, fixed in one place.

Facts come from ``shared/reference/protocols.md`` (sections cited per field). A protocol's
``settings()`` go into every metrics file and into the name and metadata of its cached
reference statistics, so two results with the same protocol are computed the same way.
Metric names (README.md) encode the metric's own parameters; the protocol encodes geometry: each
per-pair metric is listed with the image view it reads (``views.py``; e.g. ``on_view("pad40",
"ssim_w51")``), and the registry (``registry.py``, ``catalog.py``) declares every metric named here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.metrics import registry
from bench.metrics.uses import MetricUse, ScoredMetric, as_use, on_view, resolve, result_name

__all__ = ["PROTOCOLS", "MetricUse", "Protocol", "ScoredMetric", "get_protocol", "on_view"]


SSIM_VARIANTS = ("ssim_w51", "ssim_g15_dr", "ssim_g12_dr", *on_view("pad40", "ssim_w51", "ssim_g15_dr"))
PSNR_VARIANTS = ("psnr", *on_view("pad40", "psnr"))
_USE_FIELDS = ("ssim", "psnr", "abs_error", "metrics")


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    eval_size: tuple[int, int]  # (H, W) at which generated and GT images are compared
    gen_resize: str  # rule for a generated image not at eval_size (preprocess.RESIZE_RULES)
    gt_resize: str  # rule for the high-res GT / reference images
    cv2_metric_size: tuple[int, int] | None  # PIDM: cv2 INTER_LINEAR resize before FID and LPIPS
    fid_extractors: tuple[str, ...]  # "incv3tv" | "ptincv3"
    reference_split: str  # FID reference images: <root>/<split>_highres
    reference_listing: str  # "glob": every *.jpg in the folder (CFLD); "lst": <split>.lst (PIDM)
    lpips_nets: tuple[str, ...]
    lpips_input: str  # "unit": [0,1] with normalize=True (CFLD); "pm1": x/127.5 - 1 (GFLA lineage)
    ssim: tuple[str | MetricUse, ...]  # registered per-pair metrics, each on a view (a name alone: "eval")
    psnr: tuple[str | MetricUse, ...]
    drop_remainder: int | None = None  # emulation of a batch loop that drops the last partial batch
    drop_applies_to: tuple[str, ...] = ("fid", "lpips")
    abs_error: tuple[str | MetricUse, ...] = ()  # PIDM's l1 and mae_sumnorm (bench/metrics/abs_error.py)
    ssim_dtype: str = "float32"  # SSIM arithmetic: float32 (scikit-image >= 0.19) or float64 (0.17, PIDM)
    # FID's matrix square root: "scipy-sqrtm" follows the reference scripts step for step (scipy
    # sqrtm, eps offset when singular); "fast" takes Cholesky/eigh routes (same quantity, ~1e-6 apart
    # for rank-deficient covariances, 30x faster at 2048-d).
    fid_route: str = "scipy-sqrtm"
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Any further registered metric (set-level on an extractor's features, per pair on a view, plugins);
    # omitted from settings() when empty, so the protocols made before it keep byte-identical settings.
    metrics: tuple[str | MetricUse, ...] = ()

    def settings(self) -> dict[str, Any]:
        """Every field, metrics by their results name (``ssim_w51_pad40``: metric and view)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _USE_FIELDS:
                if f.name == "metrics" and not value:
                    continue
                value = [self._result_name(as_use(u)) for u in value]
            out[f.name] = value
        return json.loads(json.dumps(out))

    def _result_name(self, use: MetricUse) -> str:
        return result_name(use, self.reference_split)

    def set_result_name(self, metric: str, split: str | None = None) -> str:
        """A set-level metric's results key: its name and the reference it was measured against."""
        return f"{metric}_{split or self.reference_split}"

    def scored_metrics(self) -> list[ScoredMetric]:
        """Every results key of the protocol, in results order (``uses.resolve``)."""
        entries = [
            *(MetricUse(f"fid_{e}") for e in self.fid_extractors),
            *(MetricUse(f"lpips_{n}_v0.1") for n in self.lpips_nets),
            *(as_use(u) for u in (*self.ssim, *self.psnr, *self.abs_error, *self.metrics)),
        ]
        return resolve(self.name, entries, self.reference_split)

    def reference_settings(self, extractor: str) -> dict[str, Any]:
        """Everything that changes the reference statistics of ``extractor``."""
        return {
            "eval_size": list(self.eval_size),
            "gt_resize": self.gt_resize,
            "cv2_metric_size": list(self.cv2_metric_size) if self.cv2_metric_size else None,
            "extractor": extractor,
            "reference_split": self.reference_split,
            "reference_listing": self.reference_listing,
            "drop_remainder": self.drop_remainder,
        }

    def reference_settings_hash(self, extractor: str) -> str:
        text = json.dumps(self.reference_settings(extractor), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @property
    def feature_extractors(self) -> tuple[str, ...]:
        """Every feature extractor a set-level metric of the protocol reads (FID's first)."""
        return tuple(
            dict.fromkeys(s.metric.extractor or "" for s in self.scored_metrics() if s.metric.extractor)
        )

    @property
    def vector_extractors(self) -> tuple[str, ...]:
        """Extractors some metric of the protocol needs every feature vector of (KID, PRDC)."""
        return tuple(
            s.metric.extractor or ""
            for s in self.scored_metrics()
            if s.metric.needs == registry.VECTORS and s.metric.extractor
        )

    def with_options(
        self,
        *,
        drop_remainder: int | None = None,
        lpips_nets: tuple[str, ...] | None = None,
        extra_metrics: tuple[str | MetricUse, ...] = (),
    ) -> Protocol:
        changes: dict[str, Any] = {}
        if extra_metrics:
            changes["metrics"] = (*self.metrics, *extra_metrics)
        if drop_remainder is not None:
            changes["drop_remainder"] = drop_remainder or None
        if lpips_nets is not None:
            changes["lpips_nets"] = tuple(lpips_nets)
        return dataclasses.replace(self, **changes)


def fid_metric_name(extractor: str, split: str) -> str:
    return f"fid_{extractor}_{split}"


_CFLD_NOTES = (
    "CFLD pose_transfer_test.py eval + models/metrics.py (commit f2ea2a7): GT = test_highres target, "
    "torchvision Resize(BICUBIC, antialias) on PIL; generated images at another size are resized like CFLD's "
    "samples (F.interpolate bicubic antialias, x255, clamp, truncated to uint8)",
    "FID reference = every *.jpg in train_highres (glob), same resize; all images used, none dropped",
)


def _cfld(size: tuple[int, int], tag: str) -> Protocol:
    return Protocol(
        name=f"cfld-{tag}",
        description=f"Official CFLD evaluation at {size[0]}x{size[1]} (torchvision Inception FID vs the train set)",
        eval_size=size,
        gen_resize="torch_bicubic_aa_trunc",
        gt_resize="pil_bicubic",
        cv2_metric_size=None,
        fid_extractors=("incv3tv",),
        reference_split="train",
        reference_listing="glob",
        lpips_nets=("alex",),
        lpips_input="unit",
        ssim=("ssim_w51", "ssim_g15_dr"),
        psnr=("psnr",),
        notes=_CFLD_NOTES,
    )


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        _cfld((256, 176), "256"),
        _cfld((512, 352), "512"),
        Protocol(
            name="pidm",
            description="PIDM utils/metrics.py: 256x256 stretched images; cv2 to 256x176 before FID and LPIPS",
            eval_size=(256, 256),
            gen_resize="pil_bicubic",
            gt_resize="pil_bicubic",
            cv2_metric_size=(256, 176),
            fid_extractors=("incv3tv",),
            reference_split="train",
            reference_listing="lst",
            lpips_nets=("alex",),
            lpips_input="pm1",
            ssim=("ssim_w51", "ssim_g12_dr"),
            psnr=("psnr",),
            abs_error=("l1", "mae_sumnorm"),
            ssim_dtype="float64",
            notes=(
                "GT and reference = high-res resized to 256x256 with PIL BICUBIC (PIDM's *_256x256_pngs, PNG is "
                "lossless so in-memory uint8 is identical); reference = all train.lst images (PIDM issue #37)",
                "generated images not at 256x256 are stretched with PIL BICUBIC (PIDM generates 256x256)",
                "SSIM/PSNR/L1/MAE at 256x256 without resize; ssim_256 uses sigma 1.2 (9x9 window); SSIM in float64 "
                "as scikit-image 0.17.2 (PIDM's pin) computes it; l1 and mae_sumnorm as utils/metrics.py",
                "PIDM drops the remainder of every batch of 64 (FID, LPIPS); reproduced only with "
                "--emulate-drop-remainder 64 in PIDM's loader order (FID: each folder's *.jpg then *.png in "
                "directory order; LPIPS: sorted names), and the result states how many and which were dropped",
            ),
        ),
        Protocol(
            name="gfla-dptn",
            description="GFLA/DPTN metrics.py: SSIM and PSNR on 40-px white-padded 256x256; LPIPS at 256x176",
            eval_size=(256, 176),
            gen_resize="pil_bicubic",
            gt_resize="pil_bicubic",
            cv2_metric_size=None,
            fid_extractors=("incv3tv",),
            reference_split="train",
            reference_listing="lst",
            lpips_nets=("alex",),
            lpips_input="pm1",
            ssim=on_view("pad40", "ssim_w51", "ssim_g15_dr"),
            psnr=on_view("pad40", "psnr"),
            notes=(
                "DPTN pads both images white into 256x256 at columns 40:216 for SSIM and PSNR (pad_256)",
                "deviation: DPTN's GT and reference are the low-res 256x176 crops; the suite's dataset root holds "
                "only high-res images, which are resized with PIL BICUBIC to 256x176 here",
            ),
        ),
        Protocol(
            name="pgpis-v1",
            description="pgpis-bench recommended: standard FID weights, every image, one resize rule, all SSIM variants",
            eval_size=(256, 176),
            gen_resize="pil_bicubic",
            gt_resize="pil_bicubic",
            cv2_metric_size=None,
            fid_extractors=("ptincv3",),
            reference_split="train",
            reference_listing="lst",
            lpips_nets=("alex",),
            lpips_input="unit",
            ssim=SSIM_VARIANTS,
            psnr=PSNR_VARIANTS,
            fid_route="fast",
            notes=(
                "FID's matrix square root by Cholesky/eigh (fast; within ~1e-6 of scipy's sqrtm)",
                "one rule for every method: any image not at 256x176 (GT, reference or generated) is resized "
                "with PIL BICUBIC (antialiased); FID with the standard pytorch-fid weights vs all train.lst images",
                "LPIPS VGG is available with --lpips-nets alex,vgg (slow on CPU: ~2 pairs/s)",
            ),
        ),
    )
}


# pgpis-v2 is pgpis-v1 (every setting, so every pgpis-v1 number) plus the set-level metrics.
PROTOCOLS["pgpis-v2"] = dataclasses.replace(
    PROTOCOLS["pgpis-v1"],
    name="pgpis-v2",
    description="pgpis-v1 plus KID, FD-DINOv2 and precision/recall/density/coverage (DINOv2 space)",
    metrics=(
        "kid_ptincv3",
        "fd_dinov2_vitl14",
        "precision_k5_dinov2_vitl14",
        "recall_k5_dinov2_vitl14",
        "density_k5_dinov2_vitl14",
        "coverage_k5_dinov2_vitl14",
    ),
    notes=(
        "every pgpis-v1 metric, computed the same way (same names, same values)",
        "KID on the FID Inception's features (no extra pass; robust at small N), mean over 100 subsets "
        "of min(1000, N_generated, N_reference) images with their std (torch-fidelity's definition)",
        "FD-DINOv2 and precision/recall/density/coverage (k=5) on DINOv2 ViT-L/14 CLS features of the "
        "eval-size images stretched to 224x224 (dgm-eval), as Stein et al. (NeurIPS 2023) recommend",
        "KID and PRDC need every reference feature vector: the cached reference statistics hold them "
        "(train.lst at full DeepFashion size: ~0.4 GB for Inception, ~0.2 GB for DINOv2)",
    ),
)


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None
