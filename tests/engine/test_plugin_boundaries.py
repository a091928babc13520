"""The plugin boundary: methods import only bench.api from the engine, and the engine never imports
a method by name (methods are found through entry points)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bench.api

REPO = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, at any depth (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


@pytest.mark.parametrize(
    "path", sorted((REPO / "methods").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_methods_import_only_bench_api(path: Path) -> None:
    bad = [(line, m) for line, m in _imported_modules(path) if _top(m) == "bench" and m != "bench.api"]
    assert not bad, f"{path.relative_to(REPO)} imports engine internals {bad}; import them from bench.api"


def test_engine_never_imports_a_method() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} {m}"
        for path in sorted((REPO / "bench").rglob("*.py"))
        for line, m in _imported_modules(path)
        if _top(m) == "methods"
    ]
    assert not bad, bad


def test_every_exported_name_resolves() -> None:
    for name in bench.api.__all__:
        assert getattr(bench.api, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bench.api.nope  # noqa: B018
