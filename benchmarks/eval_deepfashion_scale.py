"""`eval_throughput.py --deepfashion-scale`: `pgpis evaluate` over the whole DeepFashion test set.

Synthetic pixels, real names: the 8,570 pairs of the real ``fasion-resize-pairs-test.csv`` (every
source and target image of the test split written as a smooth random 256x176 JPEG, one generated
PNG per pair named ``<pair_id>.png``) and a reference set of the first M names of ``train.lst``.
Random-weight networks in the real file formats (eval_throughput.write_random_weights). Each
measurement runs in its own subprocess (clean timings and ru_maxrss):

  baseline  `python -c "import torch, bench.metrics.engine"`: the import RSS every run starts from;
  floor     bare Inception forward passes (decoding excluded, the engine's allocator settings:
            bench/memory.py) over the same N + M images, or over
            an evenly spaced sample of --floor-sample of them, scaled to N + M (stated as such);
            measured before and after the cold run (the load of a shared machine moves) in wall
            and CPU seconds; the targets use their mean, and the CPU-time ratio is also given;
  cold      `pgpis evaluate` with an empty statistics cache, every metric of the protocol; its
            its --run-facts file gives the phases (reference pass, generated pass, Frechet distance).
            While it runs, its progress bars go to <workdir>/cold.log and its peak RSS so far
            (VmHWM) is sampled every 20 s into <workdir>/cold_rss.jsonl with the progress reached:
            peak RSS against the number of pairs scored, within one run;
  small     the same at N_small pairs (same M references): peak RSS flat in N.

Extrapolation to the full 48,674-image reference set: reference pass time per image x 48,674 plus
the generated pass and the Frechet distance, from the cold run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

FULL_REFERENCE = 48674


def build(work: Path, pairs_file: Path, train_list: Path, n_refs: int, n_small: int) -> dict[str, Path]:
    """Dataset roots for N (all pairs) and N_small, sharing images; generated folders for both."""
    from eval_throughput import write_images

    from bench.data.deepfashion import pair_id, read_list, read_pairs

    pairs = read_pairs(pairs_file)
    train = read_list(train_list)[:n_refs]
    if len(train) < n_refs:
        raise SystemExit(f"{train_list}: only {len(train)} names, asked for {n_refs} references")
    root = work / "root"
    gen = work / "gen"
    test_names = sorted({n for p in pairs for n in p})
    kp = "[" + ", ".join(["10"] * 18) + "]"
    todo = [
        root / f"{split}_highres" / n
        for split, names in (("train", train), ("test", test_names))
        for n in names
    ]
    todo += [gen / f"{pair_id(src, tgt)}.png" for src, tgt in pairs]
    for folder in {f.parent for f in todo}:
        folder.mkdir(parents=True, exist_ok=True)
    write_images([f for f in todo if not f.exists()])
    for split, names in (("train", train), ("test", test_names)):
        (root / f"{split}.lst").write_text("".join(n + "\n" for n in names))
        (root / f"fasion-resize-annotation-{split}.csv").write_text(
            "name:keypoints_y:keypoints_x\n" + "".join(f"{n}: {kp}: {kp}\n" for n in names)
        )
    (root / "fasion-resize-pairs-train.csv").write_text(f"from,to\n{train[0]},{train[1]}\n")
    shutil.copyfile(pairs_file, root / "fasion-resize-pairs-test.csv")
    (gen / "manifest.json").write_text(json.dumps({"method": "synthetic-noise", "settings": {}}))
    # The small size: the first n_small pairs, the same images (symlinked folders).
    small = work / "root_small"
    small.mkdir(exist_ok=True)
    for entry in root.iterdir():
        target = small / entry.name
        if entry.name != "fasion-resize-pairs-test.csv" and not target.exists():
            target.symlink_to(entry)
    lines = pairs_file.read_text().splitlines()
    (small / "fasion-resize-pairs-test.csv").write_text("\n".join(lines[: n_small + 1]) + "\n")
    return {"root": root, "root_small": small, "gen": gen}


BASELINE_CODE = "import torch, bench.metrics.engine, bench.cli.main; print('{}')"


def _watch(cmd: list[str], env: dict[str, str], log: Path, samples: Path) -> tuple[float, float, float]:
    """Run ``cmd`` with stderr to ``log``; every 20 s append its VmHWM and last progress line to ``samples``.
    Returns (wall seconds, peak RSS MB, CPU seconds user + system).

    The wall time ends when the child exits (a blocking wait4; a thread takes the samples): a loop
    that slept 20 s between polls added up to 20 s after the exit (the cold runs before 2026-12-02's
    fifth session carry that error: up to 20 s on ~1,000)."""
    import subprocess
    import threading

    t0 = time.perf_counter()
    with open(log, "w") as err, open(samples, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(20):
                try:
                    hwm = next(
                        int(line.split()[1]) / 1024
                        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                        if line.startswith("VmHWM")
                    )
                except (OSError, StopIteration):
                    continue
                tail = log.read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-1:] or [""]
                rec = {
                    "t": round(time.perf_counter() - t0),
                    "vmhwm_mb": round(hwm),
                    "progress": tail[0][-120:],
                }
                out.write(json.dumps(rec) + "\n")
                out.flush()

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}; see {log}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime


def run(args, work: Path, env: dict[str, str]) -> None:  # noqa: ANN001
    from eval_throughput import FLOOR_CODE, evaluate_cmd, run_child
    from machine import cpu_name

    from bench.data.deepfashion import read_pairs

    pairs_file = Path(args.pairs_file)
    if not pairs_file.is_file():
        raise SystemExit(
            f"{pairs_file}: the real test pairs file is needed (`pgpis fetch deepfashion` puts it in "
            "datasets/deepfashion/); pass it with --pairs-file"
        )
    n_pairs = len({tuple(p) for p in read_pairs(pairs_file)})
    t = time.perf_counter()
    if not (work / "torch").is_dir():
        run_child(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path[:0] = {[str(Path(__file__).parent)]!r}; "
                f"from eval_throughput import write_random_weights as w; from pathlib import Path; "
                f"w(Path({str(work / 'torch')!r}))",
            ],
            env,
        )
    sets = build(work, pairs_file, Path(args.train_list), args.refs, args.small_pairs)
    build_s = time.perf_counter() - t
    print(
        f"built {n_pairs} pairs + {args.refs} references (and weights) in {build_s:.0f} s under {work}",
        flush=True,
    )
    out: dict[str, object] = {
        "pairs": n_pairs,
        "refs": args.refs,
        "build_s": build_s,
        "protocol": args.protocol,
    }

    _, base_rss, _, _ = run_child([sys.executable, "-c", BASELINE_CODE], env)
    out["import_baseline_rss_mb"] = base_rss
    print(f"import baseline: peak RSS {base_rss:.0f} MB", flush=True)

    from bench.metrics.protocols import get_protocol

    protocol = get_protocol(args.protocol)
    files = sorted(sets["gen"].glob("*.png")) + sorted((sets["root"] / "train_highres").glob("*.jpg"))
    n_all = len(files)
    if args.floor_sample and args.floor_sample < n_all:
        files = [files[i] for i in np.linspace(0, n_all - 1, args.floor_sample).round().astype(int)]
    file_list = work / "floor_files.json"
    file_list.write_text(json.dumps([str(f) for f in files]))
    floor_cmd = [sys.executable, "-c", FLOOR_CODE, str(file_list), json.dumps(list(protocol.fid_extractors))]

    def measure_floor(when: str) -> dict[str, float]:
        # Measured before and after the cold run (the machine's load moves; both are listed and the
        # ratio uses their mean). CPU seconds (all threads) are also taken: on a shared machine the
        # ratio of CPU time is the steadier of the two.
        _, rss, fout, _ = run_child(floor_cmd, env)
        f = json.loads(fout.strip().splitlines()[-1])
        scale = n_all / f["images"]
        got = {"wall_s": f["floor_seconds"] * scale, "cpu_s": f["floor_cpu_seconds"] * scale, "rss_mb": rss}
        print(
            f"floor ({when} the cold run): {f['floor_seconds']:.0f} s wall, {f['floor_cpu_seconds']:.0f} s CPU, "
            f"Inception-only over {f['images']} of the {n_all} images -> {got['wall_s']:.0f} s wall for all "
            f"({n_all / got['wall_s']:.2f} images/s), load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        return got

    floors = [measure_floor("before")]
    out.update(floor_images=len(files))

    results = {}
    for label, root, n in (("cold", sets["root"], n_pairs), ("small", sets["root_small"], args.small_pairs)):
        cache = work / f"cache_{label}"
        shutil.rmtree(cache, ignore_errors=True)
        load0 = os.getloadavg()[0]
        cmd = evaluate_cmd(protocol.name, root, sets["gen"], cache, work / f"{label}.json", None)
        cmd = [c for c in cmd if c != "--no-progress"] + ["--device", args.device]
        cmd += ["--workers", str(args.workers)] if args.workers is not None else []
        cmd += ["--allow-missing"] if label == "small" else []  # the folder holds all 8,570 images
        env_progress = {k: v for k, v in env.items() if k != "TQDM_DISABLE"}
        wall, rss, cpu = _watch(cmd, env_progress, work / f"{label}.log", work / f"{label}_rss.jsonl")
        rec = json.loads((work / f"{label}.json").read_text())
        assert rec["num_images"] == n and not rec["unavailable"], (rec["num_images"], rec["unavailable"])
        t = json.loads((work / f"{label}.run.json").read_text())["timing_seconds"]
        n_ref = rec["refstats"][protocol.fid_extractors[0]]["meta"]["num_images"]
        results[label] = r = {
            "pairs": n,
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_mb": rss,
            "phases_s": t,
            "reference_images_per_s": n_ref / t["reference"],
            "generated_pairs_per_s": n / t["generated_pass"],
            "images_per_s": (n + n_ref) / wall,
            "device": rec["device"],
            "load_average_1min": [load0, os.getloadavg()[0]],
        }
        print(f"{label}: " + json.dumps(r), flush=True)
        if label == "cold":
            floors.append(measure_floor("after"))
    cold = results["cold"]
    ref_per_image = cold["phases_s"]["reference"] / args.refs
    extrapolated = cold["wall_s"] - cold["phases_s"]["reference"] + ref_per_image * FULL_REFERENCE
    floor_wall = sum(f["wall_s"] for f in floors) / len(floors)
    floor_cpu = sum(f["cpu_s"] for f in floors) / len(floors)
    floor_rss = max(f["rss_mb"] for f in floors)
    out.update(
        results=results,
        extrapolated_full_reference_s=extrapolated,
        floors=floors,
        floor_s=floor_wall,
        floor_cpu_s=floor_cpu,
    )
    ratio = cold["wall_s"] / floor_wall
    cpu_ratio = cold["cpu_s"] / floor_cpu
    print(
        f"\nmachine: {cpu_name()}, {os.cpu_count()} cores, shared with other jobs (load averages listed); "
        f"protocol {protocol.name}; synthetic 256x176 pixels, real pair names ({pairs_file.name}); device {cold['device']}"
    )
    print(
        "| phase | wall s | images/s | peak RSS MB |\n|---|---:|---:|---:|\n"
        f"| import baseline | | | {base_rss:.0f} |\n"
        f"| Inception-only floor ({n_all} images; measured on {out['floor_images']}, mean of before/after) | "
        f"{floor_wall:.0f} | {n_all / floor_wall:.2f} | {floor_rss:.0f} |\n"
        f"| evaluate cold, total ({n_pairs} pairs + {args.refs} refs) | {cold['wall_s']:.0f} | {cold['images_per_s']:.2f} | "
        f"{cold['peak_rss_mb']:.0f} |\n"
        f"| - reference pass | {cold['phases_s']['reference']:.0f} | {cold['reference_images_per_s']:.2f} | |\n"
        f"| - generated pass (every metric) | {cold['phases_s']['generated_pass']:.0f} | "
        f"{cold['generated_pairs_per_s']:.2f} pairs/s | |\n"
        f"| - Frechet distance ({protocol.fid_route}) | {cold['phases_s']['frechet']:.0f} | | |\n"
        f"| evaluate cold, {args.small_pairs} pairs + {args.refs} refs | {results['small']['wall_s']:.0f} | "
        f"{results['small']['images_per_s']:.2f} | {results['small']['peak_rss_mb']:.0f} |\n"
        f"| extrapolated: {n_pairs} pairs + {FULL_REFERENCE} refs | {extrapolated:.0f} | | |"
    )
    print(
        f"targets: cold total / floor = {ratio:.2f} wall, {cpu_ratio:.2f} CPU time "
        f"(<= 1.25: {'met' if ratio <= 1.25 else 'NOT met'} wall, {'met' if cpu_ratio <= 1.25 else 'NOT met'} CPU); "
        f"peak RSS {results['small']['peak_rss_mb']:.0f} MB at {args.small_pairs} pairs vs {cold['peak_rss_mb']:.0f} MB at "
        f"{n_pairs} ({cold['peak_rss_mb'] - results['small']['peak_rss_mb']:+.0f} MB), import baseline {base_rss:.0f} MB"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
