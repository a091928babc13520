"""The built-in metrics: one declaration each (``registry.Metric``); everything else reads these.

Adding a metric: write its function in its own file (per pair: ``f(gt, pred, **settings)`` on
float [0, 1] (B, 3, H, W) tensors of a view, returning a (B,) tensor, optionally declaring its
work on the GT alone with ``targets.target_part`` so it is done once per target; set-level: ``f(gen, ref,
**settings)`` on two ``features.FeatureSet``), then add its ``Metric(...)`` below, or register it
from another package under the entry-point group ``pgpis_bench.metrics``. A protocol then lists
its name. Facts behind each definition: ``shared/reference/protocols.md``.
"""

from __future__ import annotations

from bench.metrics.registry import FEATURES, HIGHER, LOWER, LPIPS, PER_PAIR, SET_LEVEL, VECTORS, Metric

_SSIM_UNDEFINED = "constant generated image: data_range = max - min = 0, SSIM is 0/0 (skimage returns NaN)"


def _fid(extractor: str, weight: str, what: str) -> Metric:
    return Metric(
        f"fid_{extractor}",
        SET_LEVEL,
        LOWER,
        f"FID, {what}; the name ends with the reference split",
        "bench.metrics.fid:fid_of_sets",
        consumes=FEATURES,
        extractor=extractor,
        weights=(weight,),
        protocol_args={"sqrt_route": "fid_route"},
        reference="pytorch_fid"
        if extractor == "ptincv3"
        else "CFLD `models/metrics.py`, GFLA `script/inception.py`",
        decimals=3,
    )


def _kid(extractor: str, weight: str) -> Metric:
    return Metric(
        f"kid_{extractor}",
        SET_LEVEL,
        LOWER,
        f"KID: unbiased MMD^2 with the cubic polynomial kernel (x.y/d + 1)^3 on the `{extractor}` features FID "
        "reads (no extra pass), mean over random subsets (std in metric_details); subset size capped by both "
        "set sizes",
        "bench.metrics.feature_metrics:kid_of_sets",
        consumes=FEATURES,
        extractor=extractor,
        needs=VECTORS,
        weights=(weight,),
        defaults={"subsets": 100, "subset_size": 1000, "seed": 2020},
        reference="`torch_fidelity.calculate_metrics(kid=True)` (kid_subsets 100, kid_subset_size 1000, seed 2020)",
        decimals=5,
    )


def _prdc(component: str, extractor: str, weight: str, what: str) -> Metric:
    return Metric(
        f"{component}_k5_{extractor}",
        SET_LEVEL,
        HIGHER,
        f"{what} (Naeem et al. 2020, k=5) of the generated set against the reference set, on `{extractor}` "
        "features; a set above 10,000 images is subsampled (seeded, recorded) to bound the k-NN cost",
        "bench.metrics.feature_metrics:prdc_of_sets",
        consumes=FEATURES,
        extractor=extractor,
        needs=VECTORS,
        weights=(weight,),
        defaults={"component": component, "nearest_k": 5, "max_real": 10000, "max_fake": 10000, "seed": 0},
        reference="`prdc.compute_prdc(real, fake, nearest_k=5)`",
    )


_PRDC = (
    ("precision", "share of generated images inside some reference image's k-NN ball"),
    ("recall", "share of reference images inside some generated image's k-NN ball"),
    ("density", "mean number of reference k-NN balls holding a generated image, / k"),
    ("coverage", "share of reference images whose nearest generated image lies in their k-NN ball"),
)


def _lpips(net: str, weight: str) -> Metric:
    return Metric(
        f"lpips_{net}_v0.1",
        PER_PAIR,
        LOWER,
        f"LPIPS v0.1 linear heads on {net}, per pair, mean",
        "bench.metrics.lpips_metric:Lpips",
        consumes=LPIPS,
        weights=(weight,),
        defaults={"net": net},
        reference=f"`lpips.LPIPS(net='{net}')`",
    )


def _ssim_gauss(sigma: float, tag: str, who: str) -> Metric:
    return Metric(
        f"ssim_{tag}_dr",
        PER_PAIR,
        HIGHER,
        f"Gaussian sigma {sigma} ({int(2 * round(3.5 * sigma) + 1)}x{int(2 * round(3.5 * sigma) + 1)}), "
        "population covariance, images x255, data_range = max-min of the *predicted* image",
        "bench.metrics.ssim:ssim_gauss_dr",
        defaults={"sigma": sigma},
        protocol_args={"dtype": "ssim_dtype"},
        reference=f"{who} `ssim_256`",
        undefined=_SSIM_UNDEFINED,
    )


BUILTIN: tuple[Metric, ...] = (
    _fid(
        "incv3tv",
        "inception_v3_tv",
        "torchvision Inception v3 IMAGENET1K_V1 pool features, GFLA/CFLD input scaling",
    ),
    _fid("ptincv3", "pt_inception", "pytorch-fid FID Inception (`pt_inception-2015-12-05`), `2x-1`"),
    _kid("incv3tv", "inception_v3_tv"),
    _kid("ptincv3", "pt_inception"),
    Metric(
        "fd_dinov2_vitl14",
        SET_LEVEL,
        LOWER,
        "Fréchet distance on DINOv2 ViT-L/14 CLS features (Stein et al. 2023), dgm-eval preprocessing (PIL "
        "bicubic stretch of the eval image to 224x224, ImageNet normalisation); own reference statistics",
        "bench.metrics.fid:fid_of_sets",
        consumes=FEATURES,
        extractor="dinov2_vitl14",
        weights=("dinov2_vitl14",),
        protocol_args={"sqrt_route": "fid_route"},
        reference="dgm-eval `--model dinov2 --metrics fd` (layer6ai-labs/dgm-eval)",
        decimals=3,
    ),
    *(_prdc(c, "dinov2_vitl14", "dinov2_vitl14", what) for c, what in _PRDC),
    *(_prdc(c, "ptincv3", "pt_inception", what) for c, what in _PRDC),
    _lpips("alex", "alexnet"),
    _lpips("vgg", "vgg16"),
    Metric(
        "ssim_w51",
        PER_PAIR,
        HIGHER,
        "uniform 51x51 window, sample covariance, data_range 1, float [0,1]",
        "bench.metrics.ssim:ssim_w51",
        protocol_args={"dtype": "ssim_dtype"},
        reference="`structural_similarity(gt, pred, data_range=1, win_size=51, channel_axis=0)`",
        undefined=_SSIM_UNDEFINED,
    ),
    _ssim_gauss(1.5, "g15", "GFLA/DPTN/CFLD"),
    _ssim_gauss(1.2, "g12", "PIDM"),
    Metric(
        "psnr",
        PER_PAIR,
        HIGHER,
        "data_range 1 on float [0,1], per image, mean",
        "bench.metrics.psnr:psnr",
        defaults={"data_range": 1.0},
        reference="`peak_signal_noise_ratio(gt, pred, data_range=1)`",
        decimals=3,
        undefined="generated image identical to the GT: MSE = 0, PSNR infinite (skimage returns inf)",
    ),
    Metric(
        "l1",
        PER_PAIR,
        LOWER,
        "`mean(|gt - pred|)` on float32 [0,1]",
        "bench.metrics.abs_error:l1",
        reference="PIDM `compare_l1`",
    ),
    Metric(
        "mae_sumnorm",
        PER_PAIR,
        LOWER,
        '`sum(|gt - pred|) / sum(gt + pred)` on float32 [0,1] (PIDM prints it as "MAE")',
        "bench.metrics.abs_error:mae_sumnorm",
        reference="PIDM `compare_mae`",
    ),
)
