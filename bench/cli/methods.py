"""`pgpis methods`: list the installed methods without letting a broken plugin break the list."""

from __future__ import annotations

import argparse
import json

EPILOG = """\
A method is any installed package that registers a bench.api.Method subclass under the
entry-point group "pgpis_bench.methods", e.g. in its pyproject.toml:

  [project.entry-points."pgpis_bench.methods"]
  my-method = "my_package.module:MyMethod"

Each method is imported only to read its description; one that fails to import is listed with
its error instead (and the others still work). The built-in ones are copy-source, pose-warp
and cfld.

examples:
  pgpis methods
  pgpis methods --json
"""


def describe_methods() -> list[dict[str, object]]:
    """One record per registered method: name, target, distribution, description or import error."""
    from importlib.metadata import entry_points

    from bench.registry import GROUP, available_methods, get_method_class

    dists = {ep.name: getattr(ep.dist, "name", None) for ep in entry_points(group=GROUP)}
    records: list[dict[str, object]] = []
    for name, target in available_methods().items():
        record: dict[str, object] = {
            "name": name,
            "target": target,
            "distribution": dists.get(name),
            "description": None,
            "paper": None,
            "trainable": None,
            "error": None,
        }
        try:
            info = get_method_class(name).info
        except Exception as err:  # any plugin failure (ImportError, SyntaxError, ...) is reported, not raised
            record["error"] = f"{type(err).__name__}: {err}"
        else:
            record.update(description=info.description, paper=info.paper, trainable=info.trainable)
        records.append(record)
    return records


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "methods",
        help="list the installed methods (entry-point group pgpis_bench.methods)",
        description="List the installed pose-transfer methods: name, module:Class target and description.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of records instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    records = describe_methods()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    if not records:
        print("no methods installed (entry-point group pgpis_bench.methods is empty); reinstall pgpis-bench")
        return 0
    name_w = max(len("NAME"), *(len(str(r["name"])) for r in records))
    target_w = max(len("TARGET"), *(len(str(r["target"])) for r in records))
    print(f"{'NAME':<{name_w}}  {'TARGET':<{target_w}}  DESCRIPTION")
    for r in records:
        text = f"ERROR (cannot import): {r['error']}" if r.get("error") else str(r["description"])
        print(f"{r['name']!s:<{name_w}}  {r['target']!s:<{target_w}}  {text}")
    return 0
