"""`pgpis generate`: one image per pair of a split, with a method, into a folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.cli._args import add_method_arguments, image_size
from bench.errors import ConfigError

EPILOG = """\
output:
  OUT/<from-stem>_2_<to-stem>.png   one uint8 RGB PNG per pair, at --size
  OUT/manifest.json                 every setting that changes pixels, the method, the dataset,
                                    the number of pairs, package versions and the git commit

resume and safety:
  Rerunning the same command skips every PNG that exists and is whole (PNGs are written to a
  temporary file and renamed; each existing PNG's size, chunk CRCs and end are checked, and an
  empty, truncated or wrong-size one is generated again and counted) and regenerates only the
  missing ones; the result is byte-identical to an uninterrupted run. Each pair's random generator is seeded from
  (--seed, pair id), so --batch-size, --num-workers and the number of processes do not change
  the images. A folder whose manifest records other settings (method config, checkpoint, seed,
  size, split, dataset annotations, device type) is refused without touching it.

several processes (Accelerate):
  accelerate launch --multi_gpu --num_processes 2 -m bench.cli.main generate --method M ...
  Each process takes every 2nd missing pair; the main process writes the manifest. On a machine
  without GPUs this runs 2 CPU processes (gloo) when --device is cpu.

examples:
  pgpis generate --method copy-source --dataset datasets/synthetic --out outputs/copy-source
  pgpis generate --method pose-warp --dataset data/deepfashion --out outputs/pose-warp --limit 100
  pgpis generate --method cfld --config methods/cfld/configs/tiny.yaml --checkpoint ckpt/ \\
      --dataset datasets/synthetic --out outputs/cfld-tiny --batch-size 4 --device cuda
"""


def load_config(path: str | None) -> dict[str, Any]:
    """A method config from a YAML or JSON file (a mapping); ``{}`` without a file."""
    if path is None:
        return {}
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{p}: cannot read the method config ({err.strerror}); check the --config path"
        ) from None
    except UnicodeDecodeError as err:
        line = p.read_bytes()[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: line {line}: not UTF-8 text (byte 0x{err.object[err.start]:02x}); save the config as UTF-8"
        ) from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{p}: not valid JSON: {err}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a method config must be a mapping of settings, got {type(data).__name__}")
    return data


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="generate one image per test pair with a method",
        description=(
            "Generate one image per (source, target pose) pair of a dataset split with an installed method "
            "(see `pgpis methods`), resumably."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_method_arguments(p)
    p.add_argument(
        "--dataset",
        required=True,
        type=Path,
        help="dataset root in DeepFashion's on-disk format (real or `pgpis synth`)",
    )
    p.add_argument(
        "--split", default="test", choices=["test", "train"], help="which pairs to generate (default: test)"
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created; resumed if it exists)")
    p.add_argument(
        "--seed", type=int, default=3407, help="global seed; each pair's seed derives from it (default: 3407)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="pairs per forward pass; never changes the images (default: 8)",
    )
    p.add_argument(
        "--size",
        type=image_size,
        default=(256, 176),
        metavar="HxW",
        help="output size; results are resized bicubic+antialias (default: 256x176)",
    )
    p.add_argument(
        "--num-workers",
        type=int,
        default=0,
        help="DataLoader worker processes for image loading (default: 0)",
    )
    p.add_argument(
        "--limit", type=int, help="only the first N pairs of the split (for quick runs; default: all)"
    )
    p.add_argument(
        "--device", default="cpu", help="torch device for the method, e.g. cpu, cuda (default: cpu)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.generate import GenerateOptions, generate

    opts = GenerateOptions(
        method=args.method,
        dataset=args.dataset,
        out=args.out,
        split=args.split,
        config=load_config(args.config),
        checkpoint=args.checkpoint,
        seed=args.seed,
        batch_size=args.batch_size,
        size=args.size,
        num_workers=args.num_workers,
        limit=args.limit,
        device=args.device,
        progress=not args.no_progress,
    )
    result = generate(opts)
    if result.rank == 0:
        if result.damaged:
            shown = ", ".join(f"{pid}.png" for pid in result.damaged[:5])
            more = f" and {len(result.damaged) - 5} more" if len(result.damaged) > 5 else ""
            print(
                f"{result.out}: {len(result.damaged)} existing image(s) were damaged (empty, truncated or of the "
                f"wrong size) and were generated again: {shown}{more}"
            )
        print(
            f"{result.out}: {result.num_pairs} pairs, {result.num_existing} already present, "
            f"{result.num_pairs - result.num_existing - result.num_unavailable} generated"
            + (f" by {result.world} processes" if result.world > 1 else "")
        )
        if result.num_unavailable:
            print(
                f"{result.out}: {result.num_unavailable} pair(s) the method cannot produce are left out (listed "
                "under 'unavailable' in manifest.json); `pgpis evaluate` counts them as missing"
            )
    return 0
