"""Code is a dependency: every module a stage's command can run is covered by the stage's deps, so
editing engine or method code makes `dvc status` report the stages whose outputs it can change."""

from __future__ import annotations

from _stage_code import ROOT, import_closure, stage_modules, uncovered


def test_every_stage_lists_the_code_its_command_imports(resolved_stages: dict[str, dict]) -> None:
    problems = {
        name: missing
        for name, stage in resolved_stages.items()
        if (missing := uncovered(stage["cmd"], stage["deps"]))
    }
    assert not problems, (
        "stages whose deps miss code their command imports (add them to dvc.yaml): "
        + "; ".join(f"{name}: {', '.join(files)}" for name, files in problems.items())
    )


def test_the_closure_follows_lazy_imports_and_the_method_plugin() -> None:
    files = {
        p.relative_to(ROOT).as_posix() for p in import_closure(stage_modules("pgpis generate --method cfld"))
    }
    # generate imports the registry inside run(), the registry resolves cfld through its entry point,
    # and the method imports its pipeline inside functions: all are found.
    assert {"bench/registry.py", "bench/generate.py", "methods/cfld/pipeline.py"} <= files
    assert not uncovered("pgpis evaluate --protocol pidm", ["bench"])
    assert "bench/metrics/ssim.py" in uncovered("pgpis evaluate --protocol pidm", ["bench/cli", "bench/data"])
