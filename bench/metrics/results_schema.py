"""The results file's JSON Schema (``metrics.schema.json``, beside this module) and its checks.

Every file the engine writes is validated before it is written, and every file ``report`` or
``figures`` reads is validated before a number is used: a wrong type or a NaN/Infinity where a
count belongs is refused with the file and the field named, never a traceback. Files written
before the schema existed (no ``schema_version``) are checked field by field against the same
declarations, with only ``protocol`` and ``metrics`` required.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from bench.errors import DataError

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("metrics.schema.json")
LEGACY_REQUIRED = ["protocol", "metrics"]


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _where(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def problems(record: Any) -> list[str]:
    """Every violation of the schema, as ``field: message`` (empty when the record is valid)."""
    from jsonschema import Draft202012Validator

    s = schema()
    if isinstance(record, dict) and "schema_version" not in record:
        s = {**s, "required": LEGACY_REQUIRED}
    validator = Draft202012Validator(s)
    found = [f"{_where(e)}: {e.message}" for e in sorted(validator.iter_errors(record), key=_where)]
    for name, bounds in (record.get("ci95") or {}).items() if isinstance(record, dict) else ():
        if isinstance(bounds, list) and any(isinstance(b, float) and not math.isfinite(b) for b in bounds):
            found.append(f"ci95.{name}: interval bounds must be finite, found {bounds}")
    return found


def validate(record: Any, path: str | Path, fix: str) -> None:
    """Raise a DataError naming ``path`` and the first bad fields when ``record`` breaks the schema."""
    found = problems(record)
    if found:
        shown = "; ".join(found[:5]) + (f"; ... ({len(found) - 5} more)" if len(found) > 5 else "")
        raise DataError(f"{path}: not a valid results file ({shown}); {fix}")
