"""Figures: a qualitative comparison grid and a chart of the metrics with their 95% intervals.

The grid is the figure every PGPIS paper shows: one row per test pair, columns source | target pose |
ground truth | each run. Every image is resized to the same cell (PIL bicubic, antialiased, as the
evaluation resizes), so runs that generate at another size sit side by side. The chart draws each
metric the runs share as bars with their bootstrap intervals; a metric no run could compute is named
under the chart with the reason, never dropped silently.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from bench.data.deepfashion import DeepFashionDataset, load_image
from bench.data.posemaps import skeleton
from bench.errors import DataError
from bench.report.generated import GeneratedRun, Pair
from bench.report.results import RunMetrics
from bench.report.tables import Table, arrow, build_table, direction

PAD = 4  # white gap between cells, pixels
HEADER = 22  # height of the column titles
FONT_SIZE = 13


def to_uint8(image: Any) -> np.ndarray:
    """(3,H,W) float tensor in [0,1] -> (H,W,3) uint8 (exact for images decoded from uint8)."""
    return image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


def pose_image(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The target pose as the field draws it (coloured OpenPose skeleton on black), (H,W,3) uint8."""
    return np.rint(skeleton(keypoints, size) * 255).astype(np.uint8).transpose(1, 2, 0)


def pair_cells(
    dataset: DeepFashionDataset, pair: Pair, runs: list[GeneratedRun], size: tuple[int, int]
) -> list[np.ndarray]:
    """source, target pose, ground truth, then one image per run, all at ``size`` (H, W)."""
    cells = [
        to_uint8(load_image(dataset.image_path(pair.source), size)),
        pose_image(dataset.keypoints(pair.target), size),
        to_uint8(load_image(dataset.image_path(pair.target), size)),
    ]
    cells += [to_uint8(load_image(run.image(pair.pid), size)) for run in runs]
    return cells


def _fit(text: str, draw: Any, font: Any, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def comparison_grid(
    dataset: DeepFashionDataset,
    pairs: list[Pair],
    runs: list[GeneratedRun],
    size: tuple[int, int] = (256, 176),
    progress: bool = True,
) -> Any:
    """The comparison figure as a PIL image: a header row of titles, then one row per pair."""
    from PIL import Image, ImageDraw, ImageFont
    from tqdm import tqdm

    titles = ["source", "target pose", "ground truth", *(run.label for run in runs)]
    h, w = size
    canvas = Image.new("RGB", (PAD + len(titles) * (w + PAD), HEADER + len(pairs) * (h + PAD)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(FONT_SIZE)  # bundled with Pillow: the same glyphs on every machine
    for col, title in enumerate(titles):
        text = _fit(title, draw, font, w)
        x = PAD + col * (w + PAD) + (w - draw.textlength(text, font=font)) / 2
        draw.text((x, 3), text, fill="black", font=font)
    for row, pair in enumerate(tqdm(pairs, desc="comparison grid", unit="pair", disable=not progress)):
        for col, cell in enumerate(pair_cells(dataset, pair, runs, size)):
            canvas.paste(Image.fromarray(cell), (PAD + col * (w + PAD), HEADER + row * (h + PAD)))
    return canvas


def _first_sentence(text: str, limit: int = 100) -> str:
    first = text.split(". ", 1)[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def chart_metrics(table: Table) -> tuple[list[str], dict[str, str]]:
    """Metrics to draw (those every run has, in the table's column order) and those left out, with why."""
    runs = table.runs
    shown, left_out = [], {}
    for name in table.metrics:
        lacking = [r.label for r in runs if name not in r.metrics]
        if not lacking:
            shown.append(name)
            continue
        reasons = sorted(
            {
                _first_sentence(r.unavailable.get(name, "not in its metrics file"))
                for r in runs
                if r.label in lacking
            }
        )
        left_out[name] = f"missing for {', '.join(lacking)}: {' / '.join(reasons)}"
    return shown, left_out


def metrics_chart(runs: list[RunMetrics], columns: int = 4) -> bytes:
    """PNG bytes: one panel per metric, one bar per run with its 95% interval, best direction in the title."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the chart is a file
    import matplotlib.pyplot as plt

    table = build_table(runs)  # the table's checks (one protocol), columns, directions and row order
    runs = table.runs
    shown, left_out = chart_metrics(table)
    if not shown:
        raise DataError(
            "no metric is available in every metrics file: nothing to chart ("
            + "; ".join(f"{k}: {v}" for k, v in left_out.items())
            + ")"
        )
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 0.45 * len(runs) * rows + 1.2 * rows + 0.6), squeeze=False
    )
    labels = [r.label for r in runs]
    ypos = np.arange(len(runs))
    for ax, name in zip(axes.flat, shown):
        values = np.array([r.metrics[name] for r in runs])
        lo = np.array([r.ci95.get(name, (v, v))[0] for r, v in zip(runs, values)])
        hi = np.array([r.ci95.get(name, (v, v))[1] for r, v in zip(runs, values)])
        ax.barh(ypos, values, color="#4c72b0")
        # The interval as a line from its bounds (a percentile bootstrap interval need not hold the mean).
        ax.hlines(ypos, lo, hi, color="black", linewidth=1.2)
        ax.plot(np.concatenate([lo, hi]), np.concatenate([ypos, ypos]), "|", color="black", markersize=8)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.invert_yaxis()  # the first run on top, as in the table
        ax.set_title(name + arrow(table.directions[name]), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        span = max(hi.max() - min(lo.min(), 0.0), 1e-12)
        ax.set_xlim(min(lo.min(), 0.0), hi.max() + 0.05 * span)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    protocols = ", ".join(sorted({r.protocol for r in runs}))
    fig.suptitle(
        f"protocol {protocols}; bars: mean over the images, whiskers: bootstrap 95% interval", fontsize=9
    )
    if left_out:
        fig.text(
            0.01,
            0.005,
            "not shown: " + "; ".join(f"{k} ({v})" for k, v in left_out.items()),
            fontsize=6,
            wrap=True,
        )
    fig.tight_layout(rect=(0, 0.04 if left_out else 0, 1, 0.96))
    buffer = io.BytesIO()
    # No creation date or version in the file: the same inputs give the same bytes.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def read_scores(path: Any, metric: str) -> list[tuple[str, float]]:
    """(pair id, value) of ``metric`` from a per-image CSV of `pgpis evaluate`; empty cells (undefined
    values) left out."""
    import csv
    from pathlib import Path

    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if metric not in (reader.fieldnames or []):
                raise DataError(
                    f"{path}: no column {metric!r} (columns: {', '.join(reader.fieldnames or [])}); "
                    "choose --gallery-metric among them"
                )
            return [(row["pair_id"], float(row[metric])) for row in reader if row.get(metric)]
    except FileNotFoundError:
        raise DataError(
            f"{path}: per-image scores not found; run `pgpis evaluate ... --per-image {path}`"
        ) from None
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"{path}: not a per-image CSV of `pgpis evaluate` ({err})") from None


def best_and_worst(scores: list[tuple[str, float]], metric: str, count: int) -> list[tuple[str, str, float]]:
    """(``best k``/``worst k``, pair id, value): the ``count`` best then the ``count`` worst pairs by the
    metric's direction, ties broken by pair id; a pair is shown once even when the run has few."""
    sign = -1.0 if direction(metric) != "lower" else 1.0
    ordered = sorted(scores, key=lambda s: (sign * s[1], s[0]))
    best = ordered[:count]
    worst = [s for s in ordered[::-1] if s not in best][:count]
    return [(f"best {i + 1}", *s) for i, s in enumerate(best)] + [
        (f"worst {i + 1}", *s) for i, s in enumerate(worst)
    ]


def gallery(
    dataset: DeepFashionDataset,
    run: GeneratedRun,
    pairs: dict[str, Pair],
    chosen: list[tuple[str, str, float]],
    metric: str,
    size: tuple[int, int] = (256, 176),
) -> Any:
    """One row per chosen pair: source | target pose | ground truth | the run's image, the row's rank
    and score written above it."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = size
    cols = 4
    row_h = HEADER + h + PAD
    canvas = Image.new("RGB", (PAD + cols * (w + PAD), HEADER + len(chosen) * row_h), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(FONT_SIZE)
    for col, title in enumerate(["source", "target pose", "ground truth", run.label]):
        text = _fit(title, draw, font, w)
        draw.text(
            (PAD + col * (w + PAD) + (w - draw.textlength(text, font=font)) / 2, 3),
            text,
            fill="black",
            font=font,
        )
    for row, (rank, pid, value) in enumerate(chosen):
        top = HEADER + row * row_h
        better = (
            f" ({direction(metric) or 'unknown'} is better)" if row == 0 else ""
        )  # the font has no arrows
        label = _fit(f"{rank}: {metric} = {value:.4f}{better}   {pid}", draw, font, cols * (w + PAD))
        draw.text((PAD, top + 3), label, fill="black", font=font)
        for col, cell in enumerate(pair_cells(dataset, pairs[pid], [run], size)):
            canvas.paste(Image.fromarray(cell), (PAD + col * (w + PAD), top + HEADER))
    return canvas
