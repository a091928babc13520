"""Scoring a study: one sheet per participant, the declared exclusions, then Jab, G2R and R2G per run
with counts and Wilson 95% intervals.

Order: (1) a participant found in several sources (the database and a downloaded file, or a file
given twice) is counted once, from the first source; a sheet with the same answers as one already
counted (a file copied under another name or participant id) too; both are reported. The database
holds one sheet per participant id, so its participants are compared by id only. (2) A participant who failed more than
``max_attention_failures`` attention checks is excluded whole. (3) Answers faster than
``min_response_ms`` are removed (answers without a response time, from CSV sheets, cannot be and
are counted as such). Every removal is counted in the result.
"""

from __future__ import annotations

import math
import os
import statistics
from typing import Any

from bench.errors import ConfigError
from bench.report.user_study import FORMAT, GENERATED, REAL, key_sha256
from bench.report.user_study_answers import Sheet, read_sources


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


def _deduplicate(sheets: list[Sheet]) -> tuple[list[Sheet], list[str]]:
    kept: list[Sheet] = []
    notes: list[str] = []
    by_participant: dict[str, Sheet] = {}
    by_content: dict[tuple, Sheet] = {}
    for sheet in sheets:
        first = by_participant.get(sheet.participant) if sheet.participant else None
        reason = f"participant {sheet.participant} again" if first else ""
        if first is None and sheet.answers and not sheet.from_db:
            first = by_content.get(sheet.content())
            reason = "the same answers" if first else ""
        if first is not None:
            notes.append(f"{sheet.source}: {reason} as {first.source}; counted once")
            continue
        kept.append(sheet)
        if sheet.participant:
            by_participant[sheet.participant] = sheet
        by_content.setdefault(sheet.content(), sheet)
    return kept, notes


def score_study(
    key: dict[str, Any], files: list[str | os.PathLike] | None = None, db: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Jab, G2R and R2G per run over the answers of ``files`` (answers files, CSV sheets) and ``db``."""
    files = list(files or [])
    if not files and not db:
        raise ConfigError("no answers given: pass --answers FILE... and/or --db FILE.sqlite")
    items = key["items"]
    settings = key["settings"]
    sheets, duplicates = _deduplicate(read_sources(key_sha256(key), items, files, db))
    labels = list(key["runs"])
    picks = dict.fromkeys(labels, 0)
    best_answered = 0
    g2r = {label: [0, 0] for label in labels}  # [judged real, answered] over generated images
    r2g = {label: [0, 0] for label in labels}  # [judged generated, answered] over real images
    checks = [k for k, v in items.items() if v["part"] == "attention"]
    scored = [k for k, v in items.items() if v["part"] != "attention"]
    minimum = settings.get("min_response_ms", 0)
    removed = {"attention_participants": 0, "attention_answers": 0, "too_fast_answers": 0}
    untimed = 0
    shown: list[float] = []
    participants = []
    for sheet in sheets:
        failed = sum(
            1 for k in checks if k in sheet.answers and sheet.answers[k].value != items[k]["correct"]
        )
        entry = {
            "source": sheet.source,
            "participant": sheet.participant,
            "answered": sum(k in sheet.answers for k in scored),
            "unanswered": sum(k not in sheet.answers for k in scored),
            "attention_checks_failed": failed,
            "excluded": None,
        }
        participants.append(entry)
        if failed > settings.get("max_attention_failures", 0):
            entry["excluded"] = f"failed {failed} of {len(checks)} attention checks"
            removed["attention_participants"] += 1
            removed["attention_answers"] += entry["answered"]
            continue
        for item in scored:
            answer = sheet.answers.get(item)
            if answer is None:
                continue
            if answer.response_ms is None:
                untimed += 1
            elif answer.response_ms < minimum:
                removed["too_fast_answers"] += 1
                continue
            spec = items[item]
            if spec["part"] == "best":
                best_answered += 1
                picks[spec["options"][answer.value]] += 1
                continue
            if answer.shown_ms is not None:
                shown.append(answer.shown_ms)
            if spec["truth"] == GENERATED:
                g2r[spec["run"]][0] += answer.value == REAL
                g2r[spec["run"]][1] += 1
            else:
                r2g[spec["run"]][0] += answer.value == GENERATED
                r2g[spec["run"]][1] += 1
    runs = {
        label: {
            "user_jab": _share(picks[label], best_answered),
            "user_g2r": _share(*g2r[label]),
            "user_r2g": _share(*r2g[label]),
        }
        for label in labels
    }
    exposure = None
    if shown:
        exposure = {
            "declared_ms": settings.get("exposure_ms"),
            "measured_median_ms": statistics.median(shown),
            "measured_min_ms": min(shown),
            "measured_max_ms": max(shown),
            "n": len(shown),
        }
    return {
        "format": FORMAT,
        "study": {"id": key.get("study_id"), "key_sha256": key_sha256(key)},
        "settings": settings,
        "participants": participants,
        "duplicates": duplicates,
        "exclusions": {
            **removed,
            "max_attention_failures": settings.get("max_attention_failures", 0),
            "min_response_ms": minimum,
            "answers_without_response_time": untimed,
        },
        "exposure": exposure,
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
    """The scores as a Markdown table (percentages with 95% intervals and counts), and what was removed."""

    def cell(share: dict[str, Any]) -> str:
        if share["value"] is None:
            return "n/a (no answers)"
        lo, hi = share["ci95"]
        return f"{100 * share['value']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] ({share['count']}/{share['n']})"

    people = scores["participants"]
    counted = [p for p in people if not p["excluded"]]
    ex = scores["exclusions"]
    lines = [
        "## User study",
        "",
        f"Study {scores['study']['id']} (key {scores['study']['key_sha256'][:12]}): {len(counted)} participant(s) "
        f"counted, {sum(p['answered'] for p in counted)} answers, "
        f"{sum(p['unanswered'] for p in counted)} items left blank. "
        "Percent, Wilson 95% interval, (count/answers); higher is better for all three.",
        "",
        "| Run | Jab ↑ | G2R ↑ | R2G ↑ |",
        "|---|---:|---:|---:|",
    ]
    for label, run in scores["runs"].items():
        lines.append(
            f"| {label} | {cell(run['user_jab'])} | {cell(run['user_g2r'])} | {cell(run['user_r2g'])} |"
        )
    lines += [
        "",
        f"- Repeated participants or sheets counted once: {len(scores['duplicates'])}"
        + "".join(f"\n  - {d}" for d in scores["duplicates"]),
        f"- Excluded for failing more than {ex['max_attention_failures']} attention check(s): "
        f"{ex['attention_participants']} participant(s), {ex['attention_answers']} answers",
        f"- Removed as faster than {ex['min_response_ms']} ms: {ex['too_fast_answers']} answers"
        + (
            f" ({ex['answers_without_response_time']} answers without a response time could not be checked)"
            if ex["answers_without_response_time"]
            else ""
        ),
    ]
    if scores["exposure"]:
        e = scores["exposure"]
        lines.append(
            f"- Part 2 display time measured by the page: median {e['measured_median_ms']:.1f} ms "
            f"(range {e['measured_min_ms']:.1f} to {e['measured_max_ms']:.1f}, {e['n']} images; declared "
            f"{e['declared_ms']} ms)"
        )
    return "\n".join(lines) + "\n"
