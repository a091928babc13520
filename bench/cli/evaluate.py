"""`pgpis evaluate`: score a folder of generated images under a named evaluation protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.pair_names import PLACEHOLDER_HELP

DESCRIPTION = """\
Score <images>/<pair_id>.png (made by `pgpis generate`, or any folder of .png/.jpg/.jpeg/.webp
images named by --name-pattern) against the dataset's high-res GT targets under a named protocol.
Each image is decoded once on CPU threads (a GT target shared by several pairs once for all of them)
and feeds every metric of the protocol on the device
(FID, LPIPS, SSIM and PSNR variants: GPU when there is one); memory stays flat in the number of
images; every present image is counted. Writes metrics.json (values, bootstrap 95% CIs, protocol
settings, provenance from the folder's manifest.json, device, weights' sha256, versions; schema:
bench/metrics/metrics.schema.json) and per_image.csv (one row per pair), both or neither."""

EPILOG = """\
protocols (see bench/metrics/README.md for every setting):
  cfld-256, cfld-512  official CFLD evaluation: torchvision Inception FID vs every train_highres
                      image, bicubic+antialias resize, LPIPS alex, ssim_w51 + ssim_g15_dr, psnr
  pidm                PIDM: 256x256 stretched; cv2 to 256x176 before FID/LPIPS; ssim_g12_dr
  gfla-dptn           GFLA/DPTN: SSIM/PSNR on 40-px white-padded 256x256 (the "re-padding trick")
  pgpis-v1            recommended: standard pytorch-fid FID weights, one resize rule, all variants
  pgpis-v2            pgpis-v1 plus KID, FD-DINOv2 and precision/recall/density/coverage (DINOv2)

metric names encode every choice of the metric; the protocol adds the view a per-pair metric reads
(ssim_w51 on the pad40 view: ssim_w51_pad40) and the reference split of a set-level one
(fid_ptincv3_train); compare numbers only within one protocol. Registered metrics (↑ higher is
better, ↓ lower; bench/metrics/catalog.py and plugins of the entry-point group pgpis_bench.metrics):
{metrics}

FID reference statistics:
  --refstats FILE.npz    use these (from `pgpis refstats`, or a pytorch-fid .npz with mu/sigma,
                         then marked "imported_without_metadata"); checked against the protocol,
                         the weights and the dataset's file list, refused on mismatch.
  without --refstats     looked up in the cache (--cache-dir, default $PGPIS_CACHE_DIR/refstats or
                         ~/.cache/pgpis/refstats) under a name encoding every choice, else computed
                         from the dataset and cached.

weights (offline): networks are read from $TORCH_HOME/hub/checkpoints and sha256-verified. A missing
weight makes its metrics "unavailable" in metrics.json with the file, URL and destination, and the
other metrics are still computed; --strict turns that into an error (exit 2). Get them with
`pgpis fetch-weights`.

device: every metric runs on --device (auto: the GPU when torch sees one); images are decoded by
--workers CPU threads, ahead of a GPU (pinned memory), between the network calls on the CPU (decoding
beside them slows the networks more than it saves). TF32 and reduced-precision matmuls are off
while scoring, so CPU and GPU agree within the parity tolerances; metrics.json records device and dtype.

any folder: files are found by --name-pattern (placeholders {src}, {tgt}, {src_stem}, {tgt_stem},
{pid}, as the `released` method; default {pid}); without an extension .png, .jpg, .jpeg and .webp are
tried. Two formats for one pair are refused; JPEG/lossy WebP input is counted in "lossy_input".

undefined per-image values (identical images: PSNR inf; constant image: SSIM_dr 0/0) are left out of
the mean and listed under "undefined" with their count; never averaged in silently.

examples:
  pgpis evaluate --protocol cfld-256 --images outputs/cfld --dataset data/deepfashion \\
      --refstats reports/refstats/cfld-256.npz --out reports/cfld/metrics.json --per-image reports/cfld/per_image.csv
  pgpis evaluate --protocol pidm --emulate-drop-remainder 64 --images outputs/pidm --dataset data/deepfashion \\
      --out pidm-emulated.json
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli._args import add_compute_arguments
    from bench.metrics import registry
    from bench.metrics.device import DEVICE_HELP
    from bench.metrics.protocols import PROTOCOLS

    p = sub.add_parser(
        "evaluate",
        help="score a folder of generated images under a named protocol",
        description=DESCRIPTION,
        epilog=EPILOG.replace("{metrics}", registry.listing()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS), help="evaluation protocol")
    p.add_argument("--images", required=True, type=Path, help="folder of <pair_id>.png (+ manifest.json)")
    p.add_argument("--dataset", required=True, type=Path, help="dataset root in DeepFashion format")
    p.add_argument(
        "--split", default="test", choices=["test", "train"], help="pairs to score (default: test)"
    )
    p.add_argument(
        "--refstats",
        type=Path,
        action="append",
        default=[],
        metavar="FILE.npz",
        help="FID reference statistics (repeatable, one per extractor)",
    )
    p.add_argument(
        "--refstats-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of <extractor>-<settings hash>.npz files shared by protocols with equal reference "
        "settings (the pipeline's reports/refstats, made by its refstats stage); takes this protocol's ones",
    )
    p.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    p.add_argument(
        "--run-facts",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write what the results file leaves out, the facts of this run (seconds per phase, "
        "git commit), as JSON here: benchmarks read it; --out holds the same bytes for the same inputs",
    )
    p.add_argument(
        "--per-image", type=Path, default=None, metavar="CSV", help="per-image metrics CSV to write"
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="score a folder with missing pairs (stated in the result)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail if any metric is unavailable (missing weight, too few images)",
    )
    p.add_argument(
        "--emulate-drop-remainder",
        type=int,
        default=None,
        metavar="K",
        help="reproduce a reference script's quirk (PIDM/GFLA: 64): leave the last N %% K images out of FID and "
        "LPIPS in the order PIDM's loaders read them (FID, generated and reference sets: each folder's *.jpg "
        "then *.png in directory order, as pathlib's glob lists them; LPIPS: sorted file names); the result "
        "states how many and which were dropped",
    )
    p.add_argument(
        "--lpips-nets",
        default=None,
        metavar="NETS",
        help="comma list overriding the protocol's LPIPS nets (alex,vgg)",
    )
    p.add_argument(
        "--metrics",
        default=None,
        metavar="NAMES",
        help="comma list of registered metrics to add to the protocol (listed below; a per-pair metric "
        "on another view: NAME@VIEW, views: eval, pad40); recorded in protocol_settings.metrics",
    )
    add_compute_arguments(
        p,
        "the metrics run",
        DEVICE_HELP,
        workers_help="decode threads (0: the main thread); on a GPU use ~cores",
    )
    p.add_argument(
        "--name-pattern",
        default="{pid}",
        metavar="PATTERN",
        help="file name of a pair's image, e.g. '{pid}_vis.png' or '{src}___{tgt}_vis' (default {pid}; "
        f"placeholders {PLACEHOLDER_HELP})",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="reference-statistics cache folder")
    p.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the reference-statistics cache"
    )
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0: none)"
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument(
        "--allow-unverified-weights",
        action="store_true",
        help="accept weight files whose sha256 does not match the official name (tests with random weights); "
        "listed under weights_unverified in the result",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def summary_lines(record: dict) -> list[str]:
    lines = [
        f"protocol {record['protocol']}: {record['num_images']}/{record['num_expected']} images"
        + (f", {record['dropped']} dropped (emulated)" if record["dropped"] else "")
    ]
    details = record.get("metric_details") or {}
    for name, value in record["metrics"].items():
        ci = record["ci95"].get(name)
        std = (details.get(name) or {}).get("std")
        lines.append(
            f"  {name:<22} {value:.6g}"
            + (f"  [{ci[0]:.6g}, {ci[1]:.6g}]" if ci else "")
            + (f"  (std over subsets {std:.3g})" if std is not None else "")
        )
    for name, reason in record["unavailable"].items():
        lines.append(f"  {name:<22} unavailable: {reason}")
    for name, info in record["undefined"].items():
        lines.append(f"  {name:<22} {info['count']} undefined per-image values left out")
    timing = record.get("timing_seconds") or {}
    if "total" in timing:  # a fact of this run, printed here and left out of the results file
        lines.append(
            f"  scored in {timing['total']:.1f} s on {record['device']} (commit {record.get('git')})"
        )
    return lines


def parse_metrics(text: str | None) -> tuple:
    """``--metrics`` as protocol entries: ``NAME`` or ``NAME@VIEW``."""
    from bench.metrics.protocols import MetricUse

    out = []
    for item in (text or "").split(","):
        name, _, view = item.strip().partition("@")
        if name:
            out.append(MetricUse(name, view or "eval"))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    from bench.data.deepfashion import validate_dataset  # the same dataset rules as generate

    validate_dataset(args.dataset, args.split)
    from bench.data.deepfashion import DeepFashionDataset
    from bench.errors import ConfigError
    from bench.io import check_outputs_writable
    from bench.metrics.device import resolve_device
    from bench.metrics.engine import EvalOptions, evaluate, write_outputs
    from bench.metrics.protocols import get_protocol

    protocol = get_protocol(args.protocol)
    nets = tuple(n.strip() for n in args.lpips_nets.split(",") if n.strip()) if args.lpips_nets else None
    if nets and any(n not in ("alex", "vgg") for n in nets):
        raise ConfigError(f"--lpips-nets {args.lpips_nets!r}: choose among alex, vgg")
    protocol = protocol.with_options(
        drop_remainder=args.emulate_drop_remainder, lpips_nets=nets, extra_metrics=parse_metrics(args.metrics)
    )
    protocol.scored_metrics()  # an unknown metric or view is refused before any work
    resolve_device(args.device)  # a GPU asked for but absent is refused before any work
    check_outputs_writable([args.out, args.per_image, args.run_facts])
    dataset = DeepFashionDataset(args.dataset, args.split)
    refstats_files = list(args.refstats)
    if args.refstats_dir is not None:
        from bench.errors import DataError
        from bench.refkeys import refstats_files as shared_files

        found = shared_files(protocol, args.refstats_dir)
        missing = [str(f) for f in found if not f.is_file()]
        if missing:
            raise DataError(
                f"{', '.join(missing)}: reference statistics of protocol {protocol.name} not found in "
                f"--refstats-dir; make them with `pgpis refstats --protocol {protocol.name} --out "
                f"{missing[0]}` (the pipeline: `dvc repro refstats`)"
            )
        refstats_files += found
    opts = EvalOptions(
        batch_size=args.batch_size,
        workers=args.workers,
        allow_missing=args.allow_missing,
        strict=args.strict,
        allow_unverified_weights=args.allow_unverified_weights,
        refstats_files=refstats_files,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        bootstrap=args.bootstrap,
        seed=args.seed,
        progress=not args.no_progress,
        device=args.device,
        name_pattern=args.name_pattern,
    )
    record, rows = evaluate(protocol, args.images, dataset.pairs, dataset.images_dir, args.dataset, opts)
    write_outputs(record, rows, args.out, args.per_image)
    if args.run_facts is not None:
        from bench.io import write_json_atomic
        from bench.metrics.outputs import RUN_FACTS

        write_json_atomic(args.run_facts, {k: record.get(k) for k in RUN_FACTS})
    print("\n".join(summary_lines(record)))
    return 0
