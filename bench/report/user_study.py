"""User-study sheets and their scoring: the field's Jab, G2R and R2G.

The field's user studies (PATN, then PISE/CASD/CFLD) report three numbers per method:
- **Jab**: the share of questions in which participants judged the method's image the best of all
  methods shown for one pair (source image and target pose given);
- **G2R**: the share of the method's generated images judged *real*;
- **R2G**: the share of real images judged *generated*, measured in that method's real/fake block
  (the field reports it per method: each method had its own study).
Higher is better for all three. No paper publishes its exact study protocol (CFLD's values and
protocol are unverified: ../shared/reference/protocols.md), so this is our declared one: a seeded
choice of pairs, blinded and shuffled options, every image re-encoded as PNG at one size (a real
JPEG and a generated PNG must not differ by file type or size), one CSV of answers per participant.

A study folder holds ``index.html`` + ``images/`` + ``answers.csv`` (what participants get) and
``key.json`` (the answers' meaning; keep it from participants). ``score_study`` reads the key and
the filled answer sheets and counts every answer: unanswered items are counted, a malformed sheet
is refused with its file and line.
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import random
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.errors import ConfigError, DataError
from bench.io import atomic_dir
from bench.report.figures import pose_image, to_uint8
from bench.report.generated import GeneratedRun, Pair, choose_pairs

FORMAT = "pgpis-user-study/1"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REAL_ANSWERS = {"R": "real", "REAL": "real", "G": "generated", "GEN": "generated", "GENERATED": "generated"}


@dataclass(frozen=True)
class StudySettings:
    questions: int = 20  # part 1: "which image is best" questions (Jab); 0 leaves part 1 out
    real_fake: int = 20  # part 2: generated images per run, and as many real ones, per block
    seed: int = 0
    size: tuple[int, int] = (256, 176)  # every image is shown (and stored) at this (H, W)


# --------------------------------------------------------------------------------------- making


def plan_study(runs: list[GeneratedRun], usable: list[Pair], settings: StudySettings) -> dict[str, Any]:
    """Which image goes where: the key, before any file is written (pure, seeded)."""
    if settings.questions and len(runs) < 2:
        raise ConfigError(
            "part 1 (which is best, Jab) compares runs: give at least two runs, or --questions 0"
        )
    if len(runs) > len(LETTERS):
        raise ConfigError(f"at most {len(LETTERS)} runs fit one question, got {len(runs)}")
    if settings.real_fake < 0 or settings.questions < 0:
        raise ConfigError("--questions and --real-fake must be 0 or more")
    if not settings.questions and not settings.real_fake:
        raise ConfigError("an empty study: --questions and --real-fake are both 0")
    by_target: dict[str, list[Pair]] = {}
    for pair in usable:
        by_target.setdefault(pair.target, []).append(pair)
    if 2 * settings.real_fake > len(by_target):
        raise ConfigError(
            f"--real-fake {settings.real_fake} needs {2 * settings.real_fake} distinct target images per run "
            f"(generated + real), the test pairs that every run has give {len(by_target)}"
        )
    rng = random.Random(settings.seed)
    items: dict[str, dict[str, Any]] = {}
    if settings.questions:
        for i, pair in enumerate(choose_pairs(usable, settings.questions, settings.seed), start=1):
            order = rng.sample(runs, len(runs))
            items[f"q{i:02d}"] = {
                "part": "best",
                "pair": pair.pid,
                "source": pair.source,
                "target": pair.target,
                "options": {LETTERS[k]: run.label for k, run in enumerate(order)},
            }
    if settings.real_fake:
        n = settings.real_fake
        for b, run in enumerate(rng.sample(runs, len(runs)), start=1):
            # Distinct targets: a block never shows a real photo and a generated image of one target
            # (the two side by side would give the answer away), nor one real photo twice.
            targets = rng.sample(sorted(by_target), 2 * n)
            drawn = [rng.choice(by_target[t]) for t in targets]  # n shown generated, n shown real
            shown = [("generated", p) for p in drawn[:n]] + [("real", p) for p in drawn[n:]]
            rng.shuffle(shown)
            for k, (truth, pair) in enumerate(shown, start=1):
                items[f"b{b}_{k:02d}"] = {
                    "part": "real_fake",
                    "block": f"b{b}",
                    "run": run.label,
                    "truth": truth,
                    "pair": pair.pid,
                    "image": pair.target,
                }
    return items


def _write_images(
    dataset: DeepFashionDataset,
    runs: list[GeneratedRun],
    items: dict[str, dict[str, Any]],
    size: tuple[int, int],
    images: Path,
    progress: bool,
) -> None:
    from PIL import Image
    from tqdm import tqdm

    folder = {run.label: run for run in runs}

    def save(array: Any, name: str) -> None:
        Image.fromarray(array).save(images / name, format="PNG")

    for item, spec in tqdm(items.items(), desc="user-study images", unit="item", disable=not progress):
        if spec["part"] == "best":
            save(to_uint8(load_image(dataset.image_path(spec["source"]), size)), f"{item}_source.png")
            save(pose_image(dataset.keypoints(spec["target"]), size), f"{item}_pose.png")
            for letter, label in spec["options"].items():
                save(to_uint8(load_image(folder[label].image(spec["pair"]), size)), f"{item}_{letter}.png")
        else:
            path = (
                dataset.image_path(spec["image"])
                if spec["truth"] == "real"
                else folder[spec["run"]].image(spec["pair"])
            )
            save(to_uint8(load_image(path, size)), f"{item}.png")


def _figure(src: str, caption: str) -> str:
    return f'<figure><img src="images/{src}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def render_html(items: dict[str, dict[str, Any]]) -> str:
    """The participants' page: instructions, part 1 questions, part 2 blocks. Names no run."""
    best = [(k, v) for k, v in items.items() if v["part"] == "best"]
    blocks: dict[str, list[str]] = {}
    for k, v in items.items():
        if v["part"] == "real_fake":
            blocks.setdefault(v["block"], []).append(k)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Person image study</title><style>"
        "body{font-family:sans-serif;max-width:1100px;margin:auto}figure{display:inline-block;margin:4px;"
        "text-align:center}figcaption{font-weight:bold}.q{border-top:1px solid #ccc;padding:8px 0}</style></head><body>",
        "<h1>Person image study</h1>",
        "<p>Write your answers into <code>answers.csv</code> (one row per item, column <code>answer</code>) "
        "and return that file only. Take the images in order; do not go back to change an answer.</p>",
    ]
    if best:
        parts.append(
            "<h2>Part 1: which image is best?</h2><p>Each question shows a person (<em>source</em>) and a "
            "<em>target pose</em>. Answer with the letter of the image that best shows <b>the same person</b> "
            "(face, hair, clothes) <b>in the target pose</b> and looks most like a real photo.</p>"
        )
        for k, v in best:
            figs = [_figure(f"{k}_source.png", "source"), _figure(f"{k}_pose.png", "target pose")]
            figs += [_figure(f"{k}_{letter}.png", letter) for letter in v["options"]]
            parts.append(f"<div class='q'><h3>{k}</h3>{''.join(figs)}</div>")
    if blocks:
        parts.append(
            "<h2>Part 2: real or generated?</h2><p>Look at each image for about a second. Answer <b>R</b> if "
            "you think it is a real photo, <b>G</b> if you think a computer generated it. About half of each "
            "block is real.</p>"
        )
        for block, keys in blocks.items():
            parts.append(
                f"<div class='q'><h3>block {block[1:]}</h3>{''.join(_figure(f'{k}.png', k) for k in keys)}</div>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def make_study(
    dataset: DeepFashionDataset,
    runs: list[GeneratedRun],
    usable: list[Pair],
    out: str | os.PathLike,
    settings: StudySettings,
    left_out: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the study folder ``out`` whole (built beside it, then renamed) and return its key."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{out}: folder exists and is not empty; if it is an earlier study, its key.json is what scores the "
            "answers collected for it. Choose another --out, or pass --overwrite to replace it"
        )
    items = plan_study(runs, usable, settings)
    key = {
        "format": FORMAT,
        "settings": {**asdict(settings), "size": list(settings.size)},
        "dataset": str(dataset.root),
        "split": dataset.split,
        "runs": {run.label: str(run.folder) for run in runs},
        "pairs_left_out_for_missing_images": left_out,
        "items": items,
    }
    with atomic_dir(out) as build:
        (build / "images").mkdir()
        _write_images(dataset, runs, items, settings.size, build / "images", progress)
        (build / "index.html").write_text(render_html(items), encoding="utf-8")
        with open(build / "answers.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["item", "answer"])
            writer.writerows([k, ""] for k in items)
        (build / "key.json").write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")
    return key


# -------------------------------------------------------------------------------------- scoring


def load_key(study: str | os.PathLike) -> dict[str, Any]:
    path = Path(study)
    path = path / "key.json" if path.is_dir() else path
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: study key not found; pass the folder written by `pgpis user-study make`"
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable study key ({err})") from None
    if not isinstance(key, dict) or key.get("format") != FORMAT or not isinstance(key.get("items"), dict):
        raise DataError(f"{path}: not a study key of format {FORMAT} (written by `pgpis user-study make`)")
    return key


def read_answers(path: str | os.PathLike, items: dict[str, dict[str, Any]]) -> dict[str, str]:
    """item -> normalised answer (option letter, or real/generated); blank answers are left out."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet may add a byte-order mark
    except OSError as err:
        raise DataError(f"{path}: cannot read the answer sheet ({err})") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"item", "answer"} <= {f.strip() for f in reader.fieldnames}:
        raise DataError(
            f"{path}: an answer sheet needs the header 'item,answer' (the study's answers.csv), got {reader.fieldnames}"
        )
    answers: dict[str, str] = {}
    for row in reader:
        line = reader.line_num
        item = (row.get("item") or "").strip()
        answer = (row.get("answer") or "").strip().upper()
        if not item:
            continue
        if item not in items:
            raise DataError(
                f"{path}:{line}: item {item!r} is not in this study's key; was the sheet made for another study?"
            )
        if item in answers:
            raise DataError(f"{path}:{line}: item {item!r} is answered twice")
        if not answer:
            continue
        spec = items[item]
        if spec["part"] == "best":
            if answer not in spec["options"]:
                raise DataError(
                    f"{path}:{line}: {item} answer {answer!r} is not one of the options {', '.join(spec['options'])}"
                )
            answers[item] = answer
        else:
            if answer not in REAL_ANSWERS:
                raise DataError(f"{path}:{line}: {item} answer {answer!r} must be R (real) or G (generated)")
            answers[item] = REAL_ANSWERS[answer]
    return answers


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (good at small n and at 0 or 1); None when n = 0."""
    if n == 0:
        return None
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _share(successes: int, n: int) -> dict[str, Any]:
    return {"value": successes / n if n else None, "count": successes, "n": n, "ci95": wilson(successes, n)}


def score_study(key: dict[str, Any], sheets: list[str | os.PathLike]) -> dict[str, Any]:
    """Jab, G2R and R2G per run over every answer of every sheet, with counts and Wilson intervals."""
    if not sheets:
        raise ConfigError("no answer sheets given")
    items = key["items"]
    labels = list(key["runs"])
    picks = dict.fromkeys(labels, 0)
    best_answered = 0
    g2r = {label: [0, 0] for label in labels}  # [judged real, answered] over generated images
    r2g = {label: [0, 0] for label in labels}  # [judged generated, answered] over real images
    participants = []
    for sheet in sheets:
        answers = read_answers(sheet, items)
        participants.append(
            {"sheet": str(sheet), "answered": len(answers), "unanswered": len(items) - len(answers)}
        )
        for item, answer in answers.items():
            spec = items[item]
            if spec["part"] == "best":
                best_answered += 1
                picks[spec["options"][answer]] += 1
            elif spec["truth"] == "generated":
                g2r[spec["run"]][0] += answer == "real"
                g2r[spec["run"]][1] += 1
            else:
                r2g[spec["run"]][0] += answer == "generated"
                r2g[spec["run"]][1] += 1
    runs = {
        label: {
            "user_jab": _share(picks[label], best_answered),
            "user_g2r": _share(*g2r[label]),
            "user_r2g": _share(*r2g[label]),
        }
        for label in labels
    }
    return {
        "format": FORMAT,
        "settings": key["settings"],
        "participants": participants,
        "runs": runs,
        "notes": [
            "user_jab: share of answered part-1 questions whose chosen image is the run's",
            "user_g2r: share of the run's generated images judged real",
            "user_r2g: share of real images judged generated, in the run's real/fake block",
            "ci95: Wilson score interval treating answers as independent (answers of one participant, "
            "or to one pair, are correlated: the interval is optimistic)",
        ],
    }


def scores_markdown(scores: dict[str, Any]) -> str:
    """The scores as a Markdown table (percentages with 95% intervals and counts)."""

    def cell(share: dict[str, Any]) -> str:
        if share["value"] is None:
            return "n/a (no answers)"
        lo, hi = share["ci95"]
        return f"{100 * share['value']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({share['count']}/{share['n']})"

    lines = [
        "## User study",
        "",
        f"{len(scores['participants'])} answer sheet(s); "
        f"{sum(p['answered'] for p in scores['participants'])} answers, "
        f"{sum(p['unanswered'] for p in scores['participants'])} items left blank. "
        "Percent, Wilson 95% interval, (count/answers); higher is better for all three.",
        "",
        "| Run | Jab ↑ | G2R ↑ | R2G ↑ |",
        "|---|---:|---:|---:|",
    ]
    for label, run in scores["runs"].items():
        lines.append(
            f"| {label} | {cell(run['user_jab'])} | {cell(run['user_g2r'])} | {cell(run['user_r2g'])} |"
        )
    return "\n".join(lines) + "\n"
