"""Which source files a pipeline stage's command can run: the static import closure of its
``pgpis`` subcommand (every ``import`` anywhere in a module, lazy ones inside functions included,
and module names written as strings, as bench.api's lazy re-exports and the metric catalog's
``"module:function"`` declarations are), plus the method package
a ``--method`` names (through the entry points in pyproject.toml, as the registry resolves it)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "methods")
# A module name written as a string, alone or as "module:attribute" (a metric's declared function).
_MODULE_STRING = re.compile(r"^((?:bench|methods)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?::[A-Za-z_][A-Za-z0-9_]*)?$")


def module_file(name: str) -> Path | None:
    """The file of a first-party module (package -> its __init__.py), ``None`` when not ours."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(name: str) -> list[Path]:
    parts = name.split(".")
    found = [module_file(".".join(parts[:i])) for i in range(1, len(parts))]
    return [f for f in found if f is not None]


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # submodules imported by name
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (found := _MODULE_STRING.match(node.value))
        ):
            names.add(found.group(1))
    return names


def import_closure(modules: list[str]) -> set[Path]:
    """Every first-party file reachable from ``modules`` by imports."""
    todo = list(modules)
    seen: set[Path] = set()
    while todo:
        name = todo.pop()
        path = module_file(name)
        for file in [*_package_inits(name), *([path] if path else [])]:
            if file in seen:
                continue
            seen.add(file)
            todo.extend(_imported_names(file))
    return seen


def method_modules() -> dict[str, str]:
    """Method name -> module, from the entry points the registry reads."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    points = project["project"]["entry-points"]["pgpis_bench.methods"]
    return {name: target.split(":")[0] for name, target in points.items()}


def stage_modules(cmd: str) -> list[str]:
    """The modules a ``pgpis <subcommand> ...`` command line runs."""
    words = cmd.split()
    assert words[0] == "pgpis", f"a stage runs one pgpis subcommand, found {cmd!r}"
    sub = words[1].replace("-", "_")
    modules = ["bench.cli.main", f"bench.cli.{sub}"]
    if "--method" in words:
        method = words[words.index("--method") + 1]
        modules.append(method_modules()[method])
    return modules


def uncovered(cmd: str, deps: list[str]) -> list[str]:
    """Files the command can run that no dep (a file or a folder above it) covers."""
    dep_paths = [(ROOT / d).resolve() for d in deps]
    missing = []
    for file in sorted(import_closure(stage_modules(cmd))):
        if not any(file == d or d in file.parents for d in dep_paths):
            missing.append(file.relative_to(ROOT).as_posix())
    return missing
