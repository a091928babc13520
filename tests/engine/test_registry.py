"""Method discovery: did-you-mean errors, lazy loading, a broken plugin does not break the list."""

from __future__ import annotations

import argparse
import json
from importlib.metadata import EntryPoint

import pytest

import bench.plugins as plugins
import bench.registry as registry
from bench.cli import methods as methods_cli
from bench.errors import ConfigError


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-ins plus a plugin whose module does not import and one that is not a Method."""
    real = list(plugins.entry_points(group=registry.GROUP))
    fakes = [
        EntryPoint("broken", "pgpis_no_such_module_xyz:Thing", registry.GROUP),
        EntryPoint("not-a-method", "json:JSONDecoder", registry.GROUP),
    ]
    monkeypatch.setattr(
        plugins, "entry_points", lambda group: [*real, *fakes] if group == registry.GROUP else []
    )


def test_builtins_are_registered() -> None:
    names = registry.available_methods()
    assert names["copy-source"] == "methods.copy_source:CopySource"
    assert names["pose-warp"] == "methods.pose_warp:PoseWarp"
    assert registry.get_method_class("pose-warp").info.name == "pose-warp"


def test_unknown_method_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as err:
        registry.get_method_class("copy_sourse")
    assert "Did you mean 'copy-source'" in str(err.value) and "Installed methods:" in str(err.value)
    with pytest.raises(ConfigError, match="unknown method 'zzz'. Installed methods"):
        registry.get_method_class("zzz")


def test_listing_is_lazy_and_survives_a_broken_plugin(
    fake_plugins: None, capsys: pytest.CaptureFixture
) -> None:
    # Listing names imports nothing, so the broken module is never touched.
    assert registry.available_methods()["broken"] == "pgpis_no_such_module_xyz:Thing"
    with pytest.raises(ModuleNotFoundError):
        registry.get_method_class("broken")
    with pytest.raises(ConfigError, match="not a bench.api.Method subclass"):
        registry.get_method_class("not-a-method")
    assert registry.get_method_class("copy-source").info.name == "copy-source"

    assert methods_cli.run(argparse.Namespace(json=True)) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["broken"]["error"].startswith("ModuleNotFoundError")
    assert "not a bench.api.Method subclass" in records["not-a-method"]["error"]
    assert records["pose-warp"]["error"] is None and "affine" in records["pose-warp"]["description"]

    assert methods_cli.run(argparse.Namespace(json=False)) == 0
    text = capsys.readouterr().out
    assert "broken" in text and "ERROR (cannot import)" in text and "returns the source image" in text


def test_two_packages_claiming_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [EntryPoint("dup", "a:B", registry.GROUP), EntryPoint("dup", "c:D", registry.GROUP)]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)
    with pytest.raises(ConfigError, match="two installed packages register the method 'dup'"):
        registry.available_methods()
