"""Throughput and memory of `pgpis evaluate` against the bare-Inception floor (issue 3, performance).

One command builds a synthetic set (N generated/GT pairs + M reference images at 256x176, smooth
random images, random-weight networks with calibrated BatchNorm written into a private
TORCH_HOME), then measures, each in its own subprocess so timings and peak RSS are clean:

  floor   bare Inception forward passes (channels_last, fp32, batch 32) over the same N + M
          images, decoding excluded, for every FID extractor of the protocol, under the same
          allocator settings as the engine (bench/memory.py: they speed Inception too);
  cold    `pgpis evaluate` with an empty reference-statistics cache: every image, every metric
          of the protocol, wall clock of the whole command;
  warm    the same command again, statistics cached (time should scale with N only);
  half    cold and warm at N/2 + M/2, for the flat-memory and proportional-time checks.

Targets: cold <= 1.25 x floor; peak RSS <= 1.2 GB and flat in N; warm proportional to N.
(The floor is Inception-only: a protocol with more networks, e.g. pgpis-v2's DINOv2 ViT-L/14, is
above it by their cost; --metrics adds registered metrics to the protocol, so the added cost of
one metric is the difference of two runs.)

    .venv/bin/python benchmarks/eval_throughput.py                      # 2,000 + 5,000 (slow)
    .venv/bin/python benchmarks/eval_throughput.py --pairs 200 --refs 400
    .venv/bin/python benchmarks/eval_throughput.py --pairs 64 --refs 128 --protocol pgpis-v1 --metrics kid_ptincv3
    .venv/bin/python benchmarks/eval_throughput.py --deepfashion-scale --refs 2000 \
        --pairs-file datasets/deepfashion/fasion-resize-pairs-test.csv     # the 8,570 real test pairs

--deepfashion-scale: see benchmarks/eval_deepfashion_scale.py (phases, images/s, peak RSS with the
import baseline, the Inception-only floor and the extrapolation to the 48,674-image reference set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name

REPO = Path(__file__).resolve().parents[1]
SIZE = (256, 176)


def _smooth(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    import cv2

    small = rng.random((size[0] // 16, size[1] // 16, 3)).astype(np.float32)
    return (cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(
        np.uint8
    )


IMAGES_PER_TASK = 500


def _write_chunk(job: tuple[int, int, list[Path]]) -> None:
    from PIL import Image

    seed, index, files = job
    rng = np.random.default_rng([seed, index])  # per chunk: the same pixels whatever the number of processes
    for f in files:
        part = f.with_name(f.name + ".part")  # renamed when complete: a rerun never takes a torn file
        img = Image.fromarray(_smooth(rng, SIZE))
        if f.suffix == ".jpg":
            img.save(part, format="JPEG", quality=90)
        else:
            img.save(part, format="PNG")
        os.replace(part, f)


def write_images(files: list[Path], seed: int = 0) -> None:
    """Smooth random 256x176 images (JPEG or PNG by suffix), in parallel processes: a PNG takes ~11 ms to
    compress here, and the full DeepFashion reference set plus the pairs are ~60,000 images."""
    from concurrent.futures import ProcessPoolExecutor

    chunks = [files[i : i + IMAGES_PER_TASK] for i in range(0, len(files), IMAGES_PER_TASK)]
    jobs = [(seed, index, chunk) for index, chunk in enumerate(chunks)]
    if len(jobs) <= 1:
        for job in jobs:
            _write_chunk(job)
        return
    with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        list(pool.map(_write_chunk, jobs))


def build_dataset(root: Path, n_pairs: int, n_refs: int, seed: int = 0) -> tuple[Path, Path]:
    """Dataset root in DeepFashion format + a generated folder; GT/reference images are 256x176 JPEGs."""
    train = [f"fashionWOMENDressesid{i:08d}01_1front.jpg" for i in range(n_refs)]
    n_test = max(2, n_pairs // 2)
    test = [f"fashionMENDenimid{i:08d}02_1front.jpg" for i in range(n_test)]
    pairs = [(test[(i + 1 + i // n_test) % n_test], test[i % n_test]) for i in range(n_pairs)]
    gen = root.parent / f"gen_{n_pairs}"
    images = [
        root / f"{split}_highres" / n for split, names in (("train", train), ("test", test)) for n in names
    ]
    images += [gen / f"{Path(a).stem}_2_{Path(b).stem}.png" for a, b in pairs]
    for folder in {f.parent for f in images}:
        folder.mkdir(parents=True, exist_ok=True)
    write_images(images, seed)
    kp = "[" + ", ".join(["10"] * 18) + "]"
    for split, names in (("train", train), ("test", test)):
        (root / f"{split}.lst").write_text("".join(n + "\n" for n in names))
        (root / f"fasion-resize-annotation-{split}.csv").write_text(
            "name:keypoints_y:keypoints_x\n" + "".join(f"{n}: {kp}: {kp}\n" for n in names)
        )
    (root / "fasion-resize-pairs-train.csv").write_text("from,to\n" + f"{train[0]},{train[1]}\n")
    (root / "fasion-resize-pairs-test.csv").write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    (gen / "manifest.json").write_text(json.dumps({"method": "synthetic-noise", "settings": {}}))
    return root, gen


def write_random_weights(torch_home: Path, dinov2: bool = False) -> None:
    """Random-init weights in the real formats, BatchNorm calibrated so features are not degenerate;
    with ``dinov2``, a ViT-L/14 at its real size (width 1024, depth 24, 518-px grid; ~1.2 GB)."""
    import torch
    from torchvision.models import alexnet

    from bench.metrics import weights
    from bench.metrics.inception import fid_inception_skeleton, torchvision_inception_skeleton

    os.environ["TORCH_HOME"] = str(torch_home)
    dest = weights.checkpoints_dir()
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    x = torch.rand(4, 3, 299, 299) * 2 - 1
    for key, net in (
        ("pt_inception", fid_inception_skeleton()),
        ("inception_v3_tv", torchvision_inception_skeleton()),
    ):
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        net.train()
        with torch.no_grad():
            net(x)
        torch.save(net.eval().state_dict(), dest / weights.WEIGHTS[key].filename)
    sd = {
        k: (torch.zeros(1).expand(v.shape) if k.startswith("classifier") and v.dim() == 2 else v)
        for k, v in alexnet(weights=None).state_dict().items()
    }
    torch.save(sd, dest / weights.WEIGHTS["alexnet"].filename)
    if dinov2:
        from bench.metrics.dinov2 import DinoViT

        vit = DinoViT(dim=1024, depth=24, mlp_hidden=4096, pos_grid=37)  # ViT-L/14 as torch hub builds it
        for p in vit.parameters():
            torch.nn.init.normal_(p, std=0.02)
        torch.save(vit.state_dict(), dest / weights.WEIGHTS["dinov2_vitl14"].filename)


FLOOR_CODE = r"""
import json, sys, time, torch, numpy as np
from pathlib import Path
from PIL import Image
from bench.metrics import weights
from bench.memory import keep_freed_memory
from bench.metrics.extractors import EXTRACTORS, build
keep_freed_memory()  # as the engine does on the CPU: the floor is measured under the same allocator
files = [Path(p) for p in json.loads(Path(sys.argv[1]).read_text())]
extractors = json.loads(sys.argv[2])
total = cpu = 0.0
for ext in extractors:
    model = build(ext, weights.checkpoints_dir() / weights.WEIGHTS[EXTRACTORS[ext].weight].filename)
    for s in range(0, len(files), 32):
        x = torch.from_numpy(np.stack([np.array(Image.open(f).convert("RGB")) for f in files[s:s + 32]]))
        x = x.permute(0, 3, 1, 2).float() / 255.0
        t, c = time.perf_counter(), time.process_time()
        model(x)
        total += time.perf_counter() - t
        cpu += time.process_time() - c
print(json.dumps({"floor_seconds": total, "floor_cpu_seconds": cpu, "images": len(files),
                  "torch_threads": torch.get_num_threads()}))
"""


def child_env(work: Path) -> dict[str, str]:
    """The environment of each measured subprocess: the synthetic weights, this checkout first on the
    import path (what PYTHONPATH held stays after it: a device machine's carried packages), no bars."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "TORCH_HOME": str(work / "torch"), "PYTHONPATH": path, "TQDM_DISABLE": "1"}


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MB, stdout, CPU seconds user + system); rusage of exactly this child
    via os.wait4."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024.0, out.read(), usage.ru_utime + usage.ru_stime


def evaluate_cmd(
    protocol: str, root: Path, gen: Path, cache: Path, out: Path, metrics: str | None
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.cli.main",
        "evaluate",
        "--protocol",
        protocol,
        "--images",
        str(gen),
        "--dataset",
        str(root),
        "--out",
        str(out),
        "--per-image",
        str(out.with_suffix(".csv")),
        "--run-facts",  # the timings per phase (the results file holds no run facts)
        str(out.with_suffix(".run.json")),
        "--cache-dir",
        str(cache),
        "--allow-unverified-weights",
        "--no-progress",
        *(["--metrics", metrics] if metrics else []),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2000, help="generated/GT pairs N (default 2000)")
    ap.add_argument("--refs", type=int, default=5000, help="reference (train) images M (default 5000)")
    ap.add_argument(
        "--small",
        type=str,
        default=None,
        help="the second, smaller size as PAIRS+REFS (default: half of --pairs and --refs); it runs after "
        "the full size, so the full-size figures come first",
    )
    ap.add_argument("--protocol", default="cfld-256", help="protocol to evaluate (default cfld-256)")
    ap.add_argument(
        "--metrics",
        default=None,
        metavar="NAMES",
        help="registered metrics to add to the protocol (pgpis evaluate --metrics), e.g. kid_ptincv3",
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the synthetic set here (default: temp)")
    ap.add_argument("--json", type=Path, default=None, help="also write the measurements as JSON")
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--deepfashion-scale",
        action="store_true",
        help="every pair of the real test pairs file (--pairs-file) + --refs references named from --train-list",
    )
    ap.add_argument(
        "--pairs-file",
        default=str(REPO / "datasets" / "deepfashion" / "fasion-resize-pairs-test.csv"),
        help="--deepfashion-scale: the real fasion-resize-pairs-test.csv (default: where `pgpis fetch` puts it)",
    )
    ap.add_argument(
        "--train-list",
        default=str(REPO / "datasets" / "deepfashion" / "train.lst"),
        help="--deepfashion-scale: train.lst whose first --refs names make the reference set",
    )
    ap.add_argument("--small-pairs", type=int, default=1000, help="--deepfashion-scale: the second N (RSS)")
    ap.add_argument(
        "--floor-sample",
        type=int,
        default=0,
        help="--deepfashion-scale: time the floor on this many evenly spaced images and scale (0: all)",
    )
    ap.add_argument("--device", default="auto", help="--deepfashion-scale: evaluate --device")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="--deepfashion-scale: evaluate --workers (default: evaluate's; on a GPU give ~the cores)",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.deepfashion_scale:
        from eval_deepfashion_scale import run as run_scale

        work = args.workdir or Path(tempfile.mkdtemp(prefix="pgpis-df-scale-"))
        work.mkdir(parents=True, exist_ok=True)
        env = child_env(work)
        run_scale(args, work, env)
        return
    from bench.cli.evaluate import parse_metrics
    from bench.metrics.protocols import get_protocol

    protocol = get_protocol(args.protocol).with_options(extra_metrics=parse_metrics(args.metrics))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pgpis-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = child_env(work)
    small_size = (
        tuple(int(v) for v in args.small.split("+")) if args.small else (args.pairs // 2, args.refs // 2)
    )
    sizes = [(args.pairs, args.refs), small_size]
    if args.prepare_only:
        write_random_weights(work / "torch", dinov2="dinov2_vitl14" in protocol.feature_extractors)
        for n, m in sizes:
            build_dataset(work / f"data_{n}_{m}" / "root", n, m)
        return
    t = time.perf_counter()
    # The weights and images are made in a child process. Linux carries a process's RSS high-water
    # mark across fork + exec into ru_maxrss, so a parent that had imported torch and built the
    # networks (~1.1 GB) would report its own peak for every child and mask theirs.
    run_child([sys.executable, __file__, *sys.argv[1:], "--workdir", str(work), "--prepare-only"], env)
    sets = {(n, m): (work / f"data_{n}_{m}" / "root", work / f"data_{n}_{m}" / f"gen_{n}") for n, m in sizes}
    print(f"built synthetic sets {sizes} and random weights in {time.perf_counter() - t:.0f} s under {work}")

    results: dict[str, dict] = {}
    for (n, m), (root, gen) in sets.items():
        files = sorted(gen.glob("*.png")) + sorted((root / "train_highres").glob("*.jpg"))
        # The list goes through a file: thousands of paths overflow the argument list limit.
        file_list = work / f"floor_files_{n}_{m}.json"
        file_list.write_text(json.dumps([str(f) for f in files]))
        _, floor_rss, out, _ = run_child(
            [
                sys.executable,
                "-c",
                FLOOR_CODE,
                str(file_list),
                json.dumps(list(protocol.fid_extractors)),
            ],
            env,
        )
        floor = json.loads(out.strip().splitlines()[-1])
        load_before = os.getloadavg()[0]
        cache = work / f"cache_{n}"
        cold_s, cold_rss, _, _ = run_child(
            evaluate_cmd(protocol.name, root, gen, cache, work / f"cold_{n}.json", args.metrics), env
        )
        warm_s, warm_rss, _, _ = run_child(
            evaluate_cmd(protocol.name, root, gen, cache, work / f"warm_{n}.json", args.metrics), env
        )
        rec = json.loads((work / f"cold_{n}.json").read_text())
        assert rec["num_images"] == n and not rec["unavailable"], rec["unavailable"]
        results[f"{n}+{m}"] = r = {
            "pairs": n,
            "refs": m,
            "floor_s": floor["floor_seconds"],
            "floor_peak_rss_mb": floor_rss,
            "cold_s": cold_s,
            "warm_s": warm_s,
            "ratio_cold_floor": cold_s / floor["floor_seconds"],
            "cold_peak_rss_mb": cold_rss,
            "warm_peak_rss_mb": warm_rss,
            "warm_s_per_pair": warm_s / n,
            "metrics": sorted(rec["metrics"]),
            "engine_timing": json.loads((work / f"cold_{n}.run.json").read_text())["timing_seconds"],
            "torch_threads": floor["torch_threads"],
            "load_average_1min": [load_before, os.getloadavg()[0]],  # after the floor, after warm
        }
        # Printed as soon as a size is done: the full size may take most of an hour on a busy machine.
        print(f"{n}+{m}: " + json.dumps({k: v for k, v in r.items() if k != "metrics"}), flush=True)
    big, small = results[f"{sizes[0][0]}+{sizes[0][1]}"], results[f"{sizes[1][0]}+{sizes[1][1]}"]
    cpu = cpu_name()
    print(
        f"\nmachine: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
        f"torch threads {big['torch_threads']}; protocol {protocol.name} ({', '.join(big['metrics'])})"
    )
    print(
        "how: each measurement is its own subprocess; wall clock of the whole `pgpis evaluate` command "
        "(start-up, model loading, FID sqrtm included); peak RSS from wait4 (ru_maxrss)"
    )
    head = (
        f"{'pairs+refs':>11} | {'floor s':>8} | {'cold s':>8} | {'cold/floor':>10} | {'warm s':>7} | "
        f"{'warm ms/pair':>12} | {'RSS cold MB':>11} | {'RSS warm MB':>11} | {'RSS floor MB':>12} | load avg"
    )
    print(head + "\n" + "-" * len(head))
    for key, r in results.items():
        print(
            f"{key:>11} | {r['floor_s']:8.1f} | {r['cold_s']:8.1f} | {r['ratio_cold_floor']:10.2f} | "
            f"{r['warm_s']:7.1f} | {1000 * r['warm_s_per_pair']:12.0f} | {r['cold_peak_rss_mb']:11.0f} | "
            f"{r['warm_peak_rss_mb']:11.0f} | {r['floor_peak_rss_mb']:12.0f} | "
            f"{r['load_average_1min'][0]:.1f} / {r['load_average_1min'][1]:.1f}"
        )
    peak = max(big["cold_peak_rss_mb"], small["cold_peak_rss_mb"], big["warm_peak_rss_mb"])
    warm_ratio = big["warm_s"] / small["warm_s"]
    print(
        f"targets: cold <= 1.25 x floor: {big['ratio_cold_floor']:.2f} -> "
        f"{'PASS' if big['ratio_cold_floor'] <= 1.25 else 'FAIL'}; peak RSS <= 1200 MB: {peak:.0f} MB -> "
        f"{'PASS' if peak <= 1200 else 'FAIL'}; RSS change from {small['pairs']}+{small['refs']} to "
        f"{big['pairs']}+{big['refs']}: {big['cold_peak_rss_mb'] - small['cold_peak_rss_mb']:+.0f} MB; "
        f"warm time ratio {warm_ratio:.2f} for a pair-count ratio {big['pairs'] / small['pairs']:.2f} "
        "(equal = proportional; start-up adds a constant)"
    )
    if args.json:
        args.json.write_text(json.dumps({"machine": cpu, "results": results}, indent=2))


if __name__ == "__main__":
    main()
