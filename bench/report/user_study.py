"""The user study's declared protocol: settings, the key, and what every other part reads.

The field's user studies (PATN, then PISE/CASD/CFLD) report three numbers per method:
- **Jab**: the share of questions in which participants judged the method's image the best of all
  methods shown for one pair (source image and target pose given);
- **G2R**: the share of the method's generated images judged *real*;
- **R2G**: the share of real images judged *generated*, measured in that method's real/fake block
  (the field reports it per method: each method had its own study).
Higher is better for all three. No paper publishes its exact study protocol (CFLD's values and
protocol are unverified: ../shared/reference/protocols.md), so this is our declared one:

- part 1 (Jab): a seeded choice of pairs; source, target pose and every run's image under a shuffled
  letter; optional attention checks look like any other question, but one option is the real photo
  and the others are obviously wrong (upside down, negative), so a failed check means the
  participant was not looking;
- part 2 (G2R/R2G), as in Def-GAN/PATN: one block per run, each image shown alone for a fixed
  exposure (1 s by default) and then hidden; the answer is possible only after it is hidden; the
  page measures the display time and records it;
- every image is re-encoded as PNG at one size (a real JPEG and a generated PNG must not differ by
  file type or size); a block never shows the same picture as real and as generated (content
  compared, see ``user_study_plan``);
- each participant sees part 1's questions, part 2's blocks and each block's pictures in an order of
  their own, drawn from their id (so no order effect is shared by all; a reload keeps it);
- answers cannot be changed once given; the response time is measured from the moment an answer
  becomes possible (part 1: the question's images shown; part 2: the image hidden);
- exclusions declared before the study runs: participants failing more than
  ``max_attention_failures`` checks, answers faster than ``min_response_ms``.

Modules: ``user_study_plan`` (which image goes where), ``user_study_site`` (the participants' site),
``user_study_server`` (collecting into SQLite), ``user_study_answers`` (reading answers back),
``user_study_score`` (exclusions, Jab/G2R/R2G, Wilson intervals).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.errors import DataError

FORMAT = "pgpis-user-study/2"  # key.json
ANSWERS_FORMAT = "pgpis-user-study-answers/1"  # the file a participant downloads
DB_FORMAT = "pgpis-user-study-db/1"  # the SQLite file `pgpis user-study serve` writes
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REAL, GENERATED = "real", "generated"


def _option(default: Any, help: str, minimum: int | None = None) -> Any:
    """A setting `pgpis user-study make` takes as --NAME: its help and lowest value, declared here once."""
    return field(default=default, metadata={"help": help, "minimum": minimum})


@dataclass(frozen=True)
class StudySettings:
    questions: int = _option(20, "part 1 questions, 0 to leave part 1 out (default: %(default)s)", 0)
    real_fake: int = _option(
        20,
        "part 2: generated images per run, and as many real photos, per block; 0 to leave it out "
        "(default: %(default)s)",
        0,
    )
    seed: int = 0
    size: tuple[int, int] = (256, 176)  # every image is shown (and stored) at this (H, W)
    exposure_ms: int = _option(
        1000, "part 2: how long each picture is shown before it is hidden (default: %(default)s)"
    )
    attention_checks: int = _option(
        0,
        "part 1 questions whose options are the real photo and obviously wrong pictures (default: %(default)s)",
        0,
    )
    max_attention_failures: int = _option(
        0, "scoring excludes a participant failing more checks than this (default: %(default)s)", 0
    )
    min_response_ms: int = _option(
        0, "scoring removes answers faster than this; 0: none (default: %(default)s)", 0
    )
    study_id: str = _option("", "a name for the study (default: study-<hash of its key>)")

    @classmethod
    def options(cls) -> list[Field]:
        """The settings given on the command line (seed and size come with the run arguments)."""
        return [f for f in fields(cls) if "help" in f.metadata]

    def as_json(self) -> dict[str, Any]:
        """What the key records (the study's name is not a setting of its contents)."""
        found = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "study_id"}
        return {**found, "size": list(self.size)}


def key_sha256(key: dict[str, Any]) -> str:
    """The hash that names a study in every answers file: of the key's canonical JSON, so it does
    not depend on how the key file is indented."""
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def key_path(study: str | os.PathLike) -> Path:
    """``study`` is the key file, or the folder of ``pgpis user-study make --out`` holding it."""
    path = Path(study)
    return path / "key.json" if path.is_dir() else path


def load_key(study: str | os.PathLike) -> dict[str, Any]:
    path = key_path(study)
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: study key not found; pass the key.json written by `pgpis user-study make` "
            "(by default <out>/key.json, beside <out>/site/)"
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable study key ({err})") from None
    if not isinstance(key, dict) or key.get("format") != FORMAT or not isinstance(key.get("items"), dict):
        raise DataError(f"{path}: not a study key of format {FORMAT} (written by `pgpis user-study make`)")
    return key
