"""The built-in metrics: one declaration each (``registry.Metric``); everything else reads these.

Adding a metric: write its function in its own file (per pair: ``f(gt, pred, **settings)`` on
float [0, 1] (B, 3, H, W) tensors of a view, returning a (B,) tensor; set-level: ``f(gen, ref,
**settings)`` on two ``features.FeatureSet``), then add its ``Metric(...)`` below, or register it
from another package under the entry-point group ``pgpis_bench.metrics``. A protocol then lists
its name. Facts behind each definition: ``shared/reference/protocols.md``.
"""

from __future__ import annotations

from bench.metrics.registry import FEATURES, HIGHER, LOWER, LPIPS, PER_PAIR, SET_LEVEL, Metric

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
