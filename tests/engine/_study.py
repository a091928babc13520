"""Shared by the user-study tests: make a small study, and answer it as a scripted participant would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, pair_id
from bench.report.user_study import ANSWERS_FORMAT, load_key

SIZE = (128, 88)


def make(root: Path, runs_dir: Path | list[Path], out: Path, *extra: str) -> int:
    generated = [str(p) for p in (runs_dir if isinstance(runs_dir, list) else [runs_dir])]
    return main(["user-study", "make", "--dataset", str(root), "--generated", *generated, "--out", str(out),
                 "--questions", "4", "--real-fake", "2", "--attention-checks", "1", "--size", "128x88",
                 "--no-progress", *extra])  # fmt: skip


def copying_run(root: Path, folder: Path) -> Path:
    """A method that copies its input, the way a real one would write it: the source photo, resized
    with another filter and slightly brightened (not the same bytes, the same picture)."""
    folder.mkdir(parents=True)
    data = DeepFashionDataset(root)
    for src, tgt in data.pairs:
        with Image.open(data.image_path(src)) as img:
            pixels = np.asarray(img.convert("RGB").resize((176, 256), Image.Resampling.NEAREST), np.int16)
        Image.fromarray(np.clip(pixels + 2, 0, 255).astype(np.uint8)).save(
            folder / f"{pair_id(src, tgt)}.png"
        )
    (folder / "manifest.json").write_text(json.dumps({"settings": {"method": {"method": "copy-source"}}}))
    return folder


def truthful(spec: dict[str, Any], prefer: str = "beta") -> str:
    """A participant who prefers ``prefer`` in part 1, passes the checks and sees through part 2."""
    if spec["part"] == "attention":
        return spec["correct"]
    if spec["part"] == "best":
        return next(k for k, v in spec["options"].items() if v == prefer)
    return spec["truth"]


def answers_file(
    study: Path, path: Path, participant: str, choose=truthful, response_ms: float = 900.0, **study_over: Any
) -> Path:
    """An answers file as the page downloads it."""
    from bench.report.user_study import key_sha256

    key = load_key(study)
    record = {
        "format": ANSWERS_FORMAT,
        "study": {"id": key["study_id"], "key_sha256": key_sha256(key), **study_over},
        "participant": participant,
        "answers": [
            {"item": k, "answer": choose(v), "response_ms": response_ms,
             "shown_ms": 1000.0 if v["part"] == "real_fake" else None, "answered_at": "2026-12-01T00:00:00Z"}
            for k, v in key["items"].items()
        ],
    }  # fmt: skip
    path.write_text(json.dumps(record))
    return path
