"""Your own photo in new poses with CFLD, from Python: the tiny model runs this on a CPU in under a minute.

    python examples/cfld_pose_transfer.py [--checkpoint checkpoints/cfld-tiny/model] [--out examples/out]

(Measured with the tiny architecture, 3 poses, 50 DDPM steps: 17 s of CPU time on one thread of the
2-core development VM. On a machine busy with other jobs, OMP_NUM_THREADS=1 avoids thread
oversubscription, which made a 2-thread run several times slower there.)

Inputs (examples/data, see its README): a photo with its OpenPose file, and three target poses in
three formats (OpenPose BODY_25, COCO keypoints, a DeepFashion annotation row). Output: one image
per pose and ``sheet.png`` (source | results). The same from the command line is ``pgpis
synthesize`` (README, "Your own photo in any pose").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"
HOW_TO_GET = """\
{ckpt}: no CFLD checkpoint here (config.json + model.safetensors + pipeline.json).
The tiny checkpoint is what the pipeline's train@cfld-tiny stage writes:
  source .venv/bin/activate && dvc repro train@cfld-tiny        (about 35 min on 2 CPU cores)
or, where a DVC cache already holds it:
  dvc cache dir --local /path/to/dvc-cache && dvc checkout checkpoints/cfld-tiny
Any folder `pgpis train --method cfld` wrote (its model/ subfolder) works with --checkpoint."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default="checkpoints/cfld-tiny/model", help="a CFLD model folder")
    parser.add_argument("--out", default="examples/out", help="output folder (default: examples/out)")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's, 50 DDPM steps)")
    parser.add_argument(
        "--seed", type=int, default=3407, help="global seed; each pair's seed derives from it"
    )
    args = parser.parse_args(argv)
    if not (Path(args.checkpoint) / "model.safetensors").is_file():
        print(HOW_TO_GET.format(ckpt=args.checkpoint), file=sys.stderr)
        return 2

    from bench.api import pair_seed
    from bench.data.deepfashion import pair_id
    from bench.io import save_png_atomic
    from bench.poses import load_pose, load_source
    from methods.cfld.pipeline import CFLDPipeline

    # 1. The photo, framed like a DeepFashion image (full height, 176:256) around the person that
    #    its OpenPose file describes; its keypoints land in the 256x176 annotation frame.
    source = load_source(str(DATA / "person.jpg"), pose=str(DATA / "person_keypoints.json"))
    print(f"source: {source.pose.origin}")
    # 2. Target poses, each mapped into the same frame.
    targets = [
        load_pose(str(DATA / "pose_a_body25.json"), frame=(512, 352))[
            0
        ],  # OpenPose files carry no image size
        load_pose(str(DATA / "pose_b_coco.json"))[0],  # COCO: 17 points, neck = the shoulders' midpoint
        load_pose(str(DATA / "pose_c_deepfashion.txt"))[0],  # already in the 256x176 frame
    ]
    # 3. The pipeline (our folder format; CFLDPipeline.from_official loads the released weights).
    pipe = CFLDPipeline.from_pretrained(args.checkpoint)
    # One generator per pair, seeded from (seed, pair id) as `pgpis generate` and `synthesize` do.
    ids = [pair_id(source.pose.name, t.name) for t in targets]
    seen: list[int] = []
    images = pipe(
        source_image=source.image,  # a PIL image in memory: nothing is read from disk here
        target_pose=np.stack([t.keypoints for t in targets]),  # (3, 18, 2) (y, x): one source, three poses
        generator=[torch.Generator().manual_seed(pair_seed(args.seed, pid)) for pid in ids],
        num_inference_steps=args.steps,  # None: the checkpoint's setting
        callback_on_step_end=lambda pipe, i, t, tensors: seen.append(int(t)),  # observe every step
        output_type="pil",
    )
    print(f"{len(seen)} sampling steps, timesteps {seen[0]} .. {seen[-1]}")

    # 4. Save each result at the dataset's 256x176, and a strip: source | results.
    out = Path(args.out)
    panels = [source.image.resize((176, 256), Image.BICUBIC)]
    for pid, target, image in zip(ids, targets, images):
        image = image.resize((176, 256), Image.BICUBIC)
        save_png_atomic(out / f"{pid}.png", image)
        panels.append(image)
        print(f"{out / (pid + '.png')}: {target.origin}")
    save_png_atomic(out / "sheet.png", np.concatenate([np.asarray(p) for p in panels], axis=1))
    print(f"{out / 'sheet.png'}: source | results")
    return 0


if __name__ == "__main__":
    sys.exit(main())
