"""Compare the pipeline's outputs in this checkout with those a committed ``dvc.lock`` records.

    python scripts/compare_outputs.py                    # after `dvc repro`: workspace vs HEAD's dvc.lock
    python scripts/compare_outputs.py --committed main --cache /work/dvc-cache

Every output of every stage is listed as ``same`` (hash equal), ``provenance`` (only where, when and
with which commit it was made differs: a generation manifest's ``versions``/``dataset``, a metrics
file's ``timing_seconds``/``git``/``versions``) or ``DIFFERS``. Both kinds of difference fail: the
outputs no longer record those facts (``bench.metrics.outputs.RUN_FACTS``, the manifest's relative
dataset path), so a ``provenance`` difference means an old output or a regression. For a differing metrics file it prints every
metric's committed and new value and their difference; for a per-image CSV the largest difference
per column; for a folder, the files that differ, when the committed folder's listing is in a DVC
cache (``--cache``; default: this checkout's). Exits 1 when any output differs.
``scripts/reproduce_check.sh`` runs it in a fresh clone after `dvc repro`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import yaml

# Fields that record where, when and from which commit an output was made, not what it contains.
PROVENANCE_KEYS = {"timing_seconds", "git", "versions", "dataset"}
PROVENANCE_FILES = {"manifest.json"}


def git_show(repo: Path, rev: str, path: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True)
    return done.stdout if done.returncode == 0 else None


def lock_outs(text: str) -> dict[str, dict]:
    """``{out path: {"stage", "md5", ...}}`` of a dvc.lock's text."""
    found = {}
    for stage, body in (yaml.safe_load(text) or {}).get("stages", {}).items():
        for out in body.get("outs", []) or []:
            found[out["path"]] = {"stage": stage, **out}
    return found


def json_differences(old: dict, new: dict) -> tuple[set[str], list[str]]:
    """(top-level keys that differ, lines of per-metric differences)."""
    keys = {k for k in set(old) | set(new) if old.get(k) != new.get(k)}
    lines = []
    om, nm = old.get("metrics") or {}, new.get("metrics") or {}
    for name in sorted(set(om) | set(nm)):
        a, b = om.get(name), nm.get(name)
        if a == b:
            continue
        if isinstance(a, int | float) and isinstance(b, int | float):
            ci = (new.get("ci95") or {}).get(name)
            width = f"  (new 95% CI width {ci[1] - ci[0]:.4g})" if ci else ""
            lines.append(f"    {name:<20} committed {a:<12.6g} now {b:<12.6g} diff {b - a:+.3g}{width}")
        else:
            lines.append(f"    {name:<20} committed {a} now {b}")
    return keys, lines


def _rows(data: bytes) -> dict[str, dict[str, str]]:
    """A CSV's rows keyed by their first column (the pair id)."""
    reader = csv.DictReader(io.StringIO(data.decode()))
    key = (reader.fieldnames or [""])[0]
    return {r[key]: r for r in reader}


def csv_differences(old: bytes, new: bytes) -> list[str]:
    """Largest absolute difference per numeric column of two per-image CSVs (rows by pair_id)."""
    ro, rn = _rows(old), _rows(new)
    lines = []
    if set(ro) != set(rn):
        lines.append(f"    rows: {len(set(ro) - set(rn))} only committed, {len(set(rn) - set(ro))} only new")
    columns = list(next(iter(rn.values()), {}))[1:]
    for col in columns:
        diffs = []
        for pid in set(ro) & set(rn):
            try:
                a, b = float(ro[pid].get(col, "nan")), float(rn[pid][col])
            except ValueError:
                continue
            if not (math.isnan(a) and math.isnan(b)):
                diffs.append(abs(a - b))
        if diffs and max(diffs) > 0:
            changed = sum(d > 0 for d in diffs)
            lines.append(f"    {col:<20} {changed} of {len(diffs)} rows differ, largest by {max(diffs):.3g}")
    return lines


def cache_file(cache: Path | None, md5: str) -> Path | None:
    if cache is None:
        return None
    path = cache / "files" / "md5" / md5[:2] / md5[2:]
    return path if path.is_file() else None


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def folder_differences(root: Path, listing: list[dict], cache: Path) -> tuple[list[str], bool]:
    """(lines naming the differing files, whether only provenance differs)."""
    committed = {e["relpath"]: e["md5"] for e in listing}
    now = {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}
    differing = sorted(
        r
        for r in set(committed) | set(now)
        if r not in now or r not in committed or md5_of(now[r]) != committed[r]
    )
    lines, provenance_only = [], True
    for rel in differing:
        if rel in committed and rel in now and Path(rel).name in PROVENANCE_FILES:
            old_file = cache_file(cache, committed[rel])
            if old_file is not None:
                keys, _ = json_differences(
                    json.loads(old_file.read_bytes()), json.loads(now[rel].read_bytes())
                )
                lines.append(f"    {rel}: differs in {', '.join(sorted(keys))}")
                provenance_only &= keys <= PROVENANCE_KEYS
                continue
        provenance_only = False
        where = "only committed" if rel not in now else "only new" if rel not in committed else "content"
        lines.append(f"    {rel}: {where}")
    if len(lines) > 12:
        lines = [*lines[:12], f"    ... and {len(lines) - 12} more files"]
    return lines, provenance_only


def dvc_cache_dir(repo: Path) -> Path | None:
    done = subprocess.run(["dvc", "cache", "dir"], cwd=repo, capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def compare(repo: Path, rev: str, cache: Path | None) -> tuple[int, list[str]]:
    """(number of outputs that differ, report lines)."""
    old_text = git_show(repo, rev, "dvc.lock")
    if old_text is None:
        raise SystemExit(f"compare_outputs: {rev}:dvc.lock not found in {repo}")
    old, new = lock_outs(old_text.decode()), lock_outs((repo / "dvc.lock").read_text())
    report, failures, counts = [], 0, {"same": 0, "provenance": 0, "DIFFERS": 0}
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a and b and a.get("md5") == b.get("md5"):
            counts["same"] += 1
            continue
        details: list[str] = []
        provenance_only = False
        if a is None or b is None:
            details.append("    only in the " + ("new" if a is None else "committed") + " dvc.lock")
        elif path.endswith(".json"):
            committed = git_show(repo, rev, path)
            if committed is not None and (repo / path).is_file():
                keys, details = json_differences(json.loads(committed), json.loads((repo / path).read_text()))
                provenance_only = keys <= PROVENANCE_KEYS
                other = sorted(keys - {"metrics"})
                details.append(f"    fields that differ: {', '.join(other) or 'none besides metrics'}")
        elif path.endswith(".csv"):
            committed = git_show(repo, rev, path)
            if committed is not None and (repo / path).is_file():
                details = csv_differences(committed, (repo / path).read_bytes())
        elif str(a.get("md5", "")).endswith(".dir"):
            listing = cache_file(cache, a["md5"])
            if listing is not None and (repo / path).is_dir():
                details, provenance_only = folder_differences(
                    repo / path, json.loads(listing.read_text()), cache
                )
            else:
                details.append(
                    "    (the committed folder's listing is not in the cache: pass --cache DIR to name the files)"
                )
        status = "provenance" if provenance_only else "DIFFERS"
        counts[status] += 1
        failures += 1
        report.append(f"{status:<10} {path}  (stage {(a or b)['stage']})")
        report.extend(details)
    report.append(
        f"{counts['same']} outputs the same, {counts['provenance']} differing only in provenance, "
        f"{counts['DIFFERS']} differing (compared with {rev}:dvc.lock)"
    )
    return failures, report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout (default: current folder)")
    p.add_argument(
        "--committed", default="HEAD", help="git revision of the reference dvc.lock (default: HEAD)"
    )
    p.add_argument(
        "--cache", type=Path, help="DVC cache holding the committed outputs (default: the checkout's)"
    )
    args = p.parse_args(argv)
    cache = args.cache or dvc_cache_dir(args.repo)
    failures, report = compare(args.repo, args.committed, cache)
    print("\n".join(report))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
