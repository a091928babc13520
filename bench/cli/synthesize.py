"""`pgpis synthesize`: your own photo in one or more target poses, with any installed method."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._args import add_method_arguments, image_size

EPILOG = """\
poses (--source-pose, --target-pose):
  FILE.json            OpenPose --write_json output (people[i].pose_keypoints_2d, COCO-18 or BODY_25)
                       or COCO keypoints (annotation file, or a list of detections; 17 points, the
                       neck is the shoulders' midpoint)
  FILE.json#IMAGE      the image (file_name or id) of a COCO file with several
  FILE.csv#NAME        a row of a DeepFashion annotation CSV; a file with one row needs no #NAME
  NAME                 an image of --dataset (its annotation row): borrow a pose from the dataset
  FOLDER               every *.json in it, in name order (e.g. OpenPose's per-frame files)
  Points with confidence below --threshold are missing; the largest person is used unless --person.

frames:
  Like the dataset's images, the person is seen full height in a 176:256 (W:H) frame: a wider photo
  is cropped to those columns around the person, a narrower one padded with white on both sides,
  then everything is scaled to the 256x176 annotation frame (bench/poses/framing.py). OpenPose
  files do not record the image size: the image beside the file (<stem>_keypoints.json ->
  <stem>.jpg) gives it, or --pose-frame HxW. The photo's own pose (--source-pose, or
  <photo stem>_keypoints.json beside it) centres the crop; without one the photo is cropped about
  its centre and methods that use the source pose (pose-warp) see none.

output:
  one target pose:   --out FILE.png (default: <source stem>_2_<pose stem>.png here)
  several:           --out FOLDER (default: <source stem>_poses/), one PNG per pose, named by
                     pair id, and synthesize.json (settings, where each pose came from)
  --preview          also <name>.preview.png: source | target pose | result
  --sheet FILE.png   one contact sheet: source and the poses on top, the results below
  Each pair's random generator is seeded from (--seed, pair id) as in `pgpis generate`, so a pair of
  dataset images gives the image `pgpis generate` writes for it. Existing files are not replaced
  unless --overwrite.

examples:
  pgpis synthesize --method cfld --checkpoint checkpoints/cfld-tiny/model \\
      --source me.jpg --source-pose me_keypoints.json --target-pose walk_keypoints.json --preview
  pgpis synthesize --method pose-warp --source me.jpg --source-pose me.json \\
      --target-pose frames/ --out walk/ --sheet walk.png
  pgpis synthesize --method copy-source --dataset datasets/synthetic \\
      --source <dataset image name> --target-pose <dataset image name>
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "synthesize",
        help="your own photo in one or more target poses, with any installed method",
        description=(
            "Generate a source photo in one or more target poses (OpenPose, COCO, DeepFashion poses) with an "
            "installed method (see `pgpis methods`)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_method_arguments(p)
    p.add_argument(
        "--source", required=True, help="the source photo (an image file), or a --dataset image name"
    )
    p.add_argument(
        "--source-pose", help="the source photo's pose (default: <photo stem>_keypoints.json if present)"
    )
    p.add_argument(
        "--target-pose", required=True, nargs="+", metavar="POSE", help="one or more target poses (see below)"
    )
    p.add_argument(
        "--dataset", type=Path, help="dataset root whose image names may be used as source or poses"
    )
    p.add_argument("--out", type=Path, help="output PNG (one pose) or folder (several); see below")
    p.add_argument(
        "--seed", type=int, default=3407, help="global seed; each pair's seed derives from it (default: 3407)"
    )
    p.add_argument("--steps", type=int, help="sampling steps of a diffusion method (its num_inference_steps)")
    p.add_argument(
        "--size", type=image_size, default=(256, 176), metavar="HxW", help="output size (default: 256x176)"
    )
    p.add_argument(
        "--person", type=int, help="which person of a target pose file (0-based; default: the largest)"
    )
    p.add_argument(
        "--source-person", type=int, help="which person of the source pose file (default: the largest)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.1,
        help="points with a lower confidence are missing (default: 0.1)",
    )
    p.add_argument(
        "--pose-frame",
        type=image_size,
        metavar="HxW",
        help="size of the image the target poses were found on, for files that do not record it (OpenPose)",
    )
    p.add_argument("--preview", action="store_true", help="also write source | target pose | result strips")
    p.add_argument("--sheet", type=Path, help="also write one contact sheet of all poses and results")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass; never changes images")
    p.add_argument(
        "--device", default="cpu", help="torch device for the method, e.g. cpu, cuda (default: cpu)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from bench.cli.generate import load_config
    from bench.synthesize import SynthesizeOptions, synthesize

    result = synthesize(
        SynthesizeOptions(
            method=args.method,
            source=args.source,
            targets=list(args.target_pose),
            out=args.out,
            source_pose=args.source_pose,
            config=load_config(args.config),
            checkpoint=args.checkpoint,
            dataset=args.dataset,
            seed=args.seed,
            steps=args.steps,
            size=args.size,
            person=args.person,
            source_person=args.source_person,
            threshold=args.threshold,
            pose_frame=args.pose_frame,
            preview=args.preview,
            sheet=args.sheet,
            batch_size=args.batch_size,
            device=args.device,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    )
    print(f"source: {result.origins['source']}")
    for pid, path in zip(result.pair_ids, result.images):
        print(f"{path}: {result.origins[pid]}")
    for path in result.previews:
        print(f"{path}: preview")
    if result.sheet is not None:
        print(f"{result.sheet}: contact sheet of {len(result.images)} pose(s)")
    return 0
