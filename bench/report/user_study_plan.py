"""Which image goes where in a study: the key's items, seeded, before any file is written.

Fair real/fake blocks: a participant who sees one picture once as "real" and once as "generated" is
given the answer (or confused by it). A method that copies its input (``copy-source``) makes exactly
that picture: its "generated" image of a pair is the pair's source photo. So the real photos of a
block are drawn from other pairs (never the source nor the target of one of the block's generated
images), and every real photo of part 2 is compared by content with every generated image of part 2
(thumbnails of the re-encoded images, ``near_duplicate``), so a copy under another name, another
encoding or a slightly different resize is caught too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.errors import ConfigError
from bench.report.generated import GeneratedRun, Pair, choose_pairs
from bench.report.user_study import GENERATED, LETTERS, REAL, StudySettings

# Mean absolute difference of 32x22 grey thumbnails (0..1) below which two pictures count as one:
# re-encodings and resizes of one photo stay under 0.01; two photos of different poses are above 0.05.
NEAR_DUPLICATE = 0.02
THUMB = (22, 32)  # (W, H) for PIL

# The obviously wrong options of an attention check, made from the pair's real target photo.
WRONG_OPTIONS = ("upside_down", "negative", "upside_down_negative", "mirrored_negative")


def thumbnail(image: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 -> a small grey float image in [0,1], the content compared between pictures."""
    from PIL import Image

    grey = Image.fromarray(image).convert("L").resize(THUMB, Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32) / 255.0


def near_duplicate(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) < NEAR_DUPLICATE


def wrong_option(image: np.ndarray, variant: str) -> np.ndarray:
    """An attention check's obviously wrong picture (nobody would call it the person in the pose)."""
    if variant == "upside_down":
        return np.ascontiguousarray(image[::-1])
    if variant == "negative":
        return 255 - image
    if variant == "upside_down_negative":
        return np.ascontiguousarray(255 - image[::-1])
    if variant == "mirrored_negative":
        return np.ascontiguousarray(255 - image[::-1, ::-1])
    raise ValueError(variant)


# (kind, run label or "", pair id or image name) -> thumbnail of the image as the study shows it
Fingerprint = Callable[[str, str, str], np.ndarray]


def _check(runs: list[GeneratedRun], settings: StudySettings) -> None:
    if settings.questions and len(runs) < 2:
        raise ConfigError(
            "part 1 (which is best, Jab) compares runs: give at least two runs, or --questions 0"
        )
    if len(runs) > len(LETTERS):
        raise ConfigError(f"at most {len(LETTERS)} runs fit one question, got {len(runs)}")
    if min(settings.real_fake, settings.questions, settings.attention_checks) < 0:
        raise ConfigError("--questions, --real-fake and --attention-checks must be 0 or more")
    if not settings.questions and not settings.real_fake:
        raise ConfigError("an empty study: --questions and --real-fake are both 0")
    if settings.attention_checks and not settings.questions:
        raise ConfigError("attention checks are mixed into part 1: they need --questions above 0")
    if settings.exposure_ms < 50 or settings.exposure_ms > 60_000:
        raise ConfigError(f"--exposure-ms must be between 50 and 60000, got {settings.exposure_ms}")
    if settings.min_response_ms < 0 or settings.max_attention_failures < 0:
        raise ConfigError("--min-response-ms and --max-attention-failures must be 0 or more")


def plan_study(
    runs: list[GeneratedRun], usable: list[Pair], settings: StudySettings, fingerprint: Fingerprint
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The key's items in presentation order, and counts of what the fairness rules rejected."""
    _check(runs, settings)
    rng = random.Random(settings.seed)
    items: dict[str, dict[str, Any]] = {}
    if settings.questions:
        questions: list[dict[str, Any]] = []
        for pair in choose_pairs(usable, settings.questions, settings.seed):
            order = rng.sample(runs, len(runs))
            questions.append(
                {
                    "part": "best",
                    "pair": pair.pid,
                    "source": pair.source,
                    "target": pair.target,
                    "options": {LETTERS[k]: run.label for k, run in enumerate(order)},
                }
            )
        for pair in rng.sample(usable, min(settings.attention_checks, len(usable))):
            n = len(runs)
            right = rng.randrange(n)
            wrong = iter(rng.sample(WRONG_OPTIONS, len(WRONG_OPTIONS)) * (n // len(WRONG_OPTIONS) + 1))
            check = {
                "part": "attention",
                "pair": pair.pid,
                "source": pair.source,
                "target": pair.target,
                "options": {LETTERS[k]: REAL if k == right else next(wrong) for k in range(n)},
                "correct": LETTERS[right],
            }
            questions.insert(rng.randrange(len(questions) + 1), check)  # (the page reorders per participant)
        for i, spec in enumerate(questions, start=1):
            items[f"q{i:02d}"] = spec
    stats = {"real_photos_rejected_as_copies": 0}
    if settings.real_fake:
        items.update(_real_fake(runs, usable, settings.real_fake, rng, fingerprint, stats))
    return items, stats


def _real_fake(
    runs: list[GeneratedRun],
    usable: list[Pair],
    n: int,
    rng: random.Random,
    fingerprint: Fingerprint,
    stats: dict[str, int],
) -> dict[str, dict[str, Any]]:
    blocks = rng.sample(runs, len(runs))
    generated: list[list[Pair]] = []
    for _ in blocks:
        picks: list[Pair] = []
        targets: set[str] = set()
        for pair in rng.sample(usable, len(usable)):
            if pair.target not in targets:  # one target once: its real photo cannot follow it
                picks.append(pair)
                targets.add(pair.target)
                if len(picks) == n:
                    break
        if len(picks) < n:
            raise ConfigError(
                f"--real-fake {n}: the test pairs every run has give only {len(picks)} distinct target images"
            )
        generated.append(picks)
    shown_generated = np.stack(
        [fingerprint(GENERATED, run.label, p.pid) for run, picks in zip(blocks, generated) for p in picks]
    )
    photos = sorted({p.target for p in usable} | {p.source for p in usable})
    items: dict[str, dict[str, Any]] = {}
    for b, (run, picks) in enumerate(zip(blocks, generated), start=1):
        taken = {p.target for p in picks} | {p.source for p in picks}  # real photos from other pairs
        reals: list[str] = []
        for name in rng.sample(photos, len(photos)):
            if name in taken:
                continue
            thumb = fingerprint(REAL, "", name)
            if float(np.abs(shown_generated - thumb).mean(axis=(1, 2)).min()) < NEAR_DUPLICATE:
                stats["real_photos_rejected_as_copies"] += 1  # some run "generated" this very picture
                continue
            reals.append(name)
            taken.add(name)
            if len(reals) == n:
                break
        if len(reals) < n:
            raise ConfigError(
                f"--real-fake {n}: block of {run.label} needs {n} real photos from other pairs that no run "
                f"reproduces, found {len(reals)} among {len(photos)} photos; lower --real-fake"
            )
        shown = [(GENERATED, p.pid, p.target) for p in picks]
        shown += [(REAL, None, name) for name in reals]
        rng.shuffle(shown)
        for k, (truth, pid, image) in enumerate(shown, start=1):
            spec: dict[str, Any] = {"part": "real_fake", "block": f"b{b}", "run": run.label, "truth": truth}
            if pid is not None:
                spec["pair"] = pid
            spec["image"] = image
            items[f"b{b}_{k:02d}"] = spec
    return items
