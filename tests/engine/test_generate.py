"""The generation engine: file layout, manifest, seeding, batch-size independence, resume, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api import InputSpec, Method, MethodInfo, PairBatch
from bench.errors import ConfigError
from bench.generate import GenerateOptions, generate
from bench.registry import load_method


class Noise(Method):
    """Draws every pixel from the pair's generator: proves seeding is per pair, not per batch."""

    info = MethodInfo(name="noise", description="uniform noise from the per-pair generator")

    @property
    def inputs(self) -> InputSpec:
        return InputSpec(image_size=(32, 24))

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        return torch.stack([torch.rand(3, 32, 24, generator=g) for g in generator])


class Crashing(Method):
    """Wraps a method and raises after ``after`` batches: a job killed mid-run."""

    def __init__(self, inner: Method, after: int) -> None:
        super().__init__(inner.config)
        self.inner, self.after, self.calls = inner, after, 0
        self.info = inner.info

    @property
    def inputs(self) -> InputSpec:
        return self.inner.inputs

    def settings(self) -> dict:
        return self.inner.settings()

    def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
        if self.calls == self.after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        return self.inner.generate(batch, generator)


def opts(root: Path, out: Path, **kw) -> GenerateOptions:
    return GenerateOptions(method=kw.pop("method", "pose-warp"), dataset=root, out=out, progress=False, **kw)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def pngs(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(folder).items() if k.endswith(".png")}


@pytest.fixture(scope="module")
def reference(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted pose-warp run, batch size 8: the bytes every other run must match."""
    out = tmp_path_factory.mktemp("ref") / "pose-warp"
    result = generate(opts(tiny_root, out))
    assert (result.num_pairs, result.num_existing, result.num_generated) == (24, 0, 24)
    return out


def test_layout_and_manifest(reference: Path, tiny_root: Path) -> None:
    pairs = (tiny_root / "fasion-resize-pairs-test.csv").read_text().split()[1:]
    expected = {f"{Path(a).stem}_2_{Path(b).stem}.png" for a, b in (p.split(",") for p in pairs)}
    assert set(pngs(reference)) == expected
    img = np.asarray(Image.open(next(iter(reference.glob("*.png")))))
    assert img.shape == (256, 176, 3) and img.dtype == np.uint8
    manifest = json.loads((reference / "manifest.json").read_text())
    s = manifest["settings"]
    assert s["method"]["method"] == "pose-warp" and s["seed"] == 3407 and s["output_size"] == [256, 176]
    assert s["split"] == "test" and s["dataset"]["annotations_sha256"] and s["checkpoint_sha256"] is None
    assert manifest["num_pairs"] == 24 and len(manifest["pairs_sha256"]) == 64
    # packages and lock, no commit; the dataset as given: another clone or commit writes the same bytes
    assert manifest["versions"]["torch"] and "git" not in manifest["versions"]
    assert manifest["dataset"] == str(tiny_root)
    assert not list(reference.glob(".*")), "no temporary files may remain"


def test_batch_size_and_workers_do_not_change_bytes(reference: Path, tiny_root: Path, tmp_path: Path) -> None:
    generate(opts(tiny_root, tmp_path / "b1", batch_size=1))
    generate(opts(tiny_root, tmp_path / "b4", batch_size=4, num_workers=2))
    assert pngs(tmp_path / "b1") == pngs(reference)
    assert pngs(tmp_path / "b4") == pngs(reference)
    assert (tmp_path / "b1" / "manifest.json").read_bytes() == (reference / "manifest.json").read_bytes()


def test_per_pair_generators(tiny_root: Path, tmp_path: Path) -> None:
    noise = Noise()
    generate(opts(tiny_root, tmp_path / "a", method="noise", batch_size=5, size=(32, 24)), method=noise)
    generate(opts(tiny_root, tmp_path / "b", method="noise", batch_size=2, size=(32, 24)), method=noise)
    a, b = pngs(tmp_path / "a"), pngs(tmp_path / "b")
    assert a == b
    assert len(set(a.values())) == len(a), "every pair must get its own random stream"
    generate(opts(tiny_root, tmp_path / "c", method="noise", seed=1, size=(32, 24)), method=noise)
    assert pngs(tmp_path / "c") != a


def test_resume_after_deleting_outputs(reference: Path, tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    generate(opts(tiny_root, out, batch_size=3))
    victims = sorted(out.glob("*.png"))[::3]
    for v in victims:
        v.unlink()
    keep = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    result = generate(opts(tiny_root, out, batch_size=3))
    assert (result.num_existing, result.num_generated) == (24 - len(victims), len(victims))
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if p.name in keep} == keep, (
        "existing PNGs rewritten"
    )
    assert pngs(out) == pngs(reference)


def test_resume_after_a_crash_mid_run(reference: Path, tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "crashed"
    # A stale temporary file, as a kill inside the atomic write leaves it.
    out.mkdir()
    (out / ".x_2_y.png.abc123.png").write_bytes(b"half")
    crashing = Crashing(load_method("pose-warp"), after=2)
    with pytest.raises(KeyboardInterrupt):
        generate(opts(tiny_root, out, batch_size=5), method=crashing)
    assert len(pngs(out)) == 10 and (out / "manifest.json").exists()
    result = generate(opts(tiny_root, out, batch_size=7))
    assert (result.num_existing, result.num_generated) == (10, 14)
    assert pngs(out) == pngs(reference)
    assert not list(out.glob(".*")), "stale temporary files are removed"


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"seed": 1}, "seed"),
        ({"config": {"width_scale": 2.0}}, "method.config.width_scale"),
        ({"size": (128, 88)}, "output_size"),
    ],
)
def test_folder_from_other_settings_is_refused_untouched(
    reference: Path, tiny_root: Path, tmp_path: Path, change: dict, mentions: str
) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    for name, data in snapshot(reference).items():
        (out / name).write_bytes(data)
    (out / sorted(pngs(out))[0]).unlink()  # something left to generate: the refusal must still win
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    with pytest.raises(ConfigError) as err:
        generate(opts(tiny_root, out, **change))
    msg = str(err.value)
    assert mentions in msg and "manifest.json" in msg and "new --out" in msg and "delete" in msg
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before


def test_pngs_without_manifest_are_refused(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "someone_2_else.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="no manifest.json"):
        generate(opts(tiny_root, out))
    assert sorted(p.name for p in out.iterdir()) == ["someone_2_else.png"]


def test_corrupt_manifest_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "corrupt"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable generation manifest"):
        generate(opts(tiny_root, out))
    assert (out / "manifest.json").read_text() == "{not json"


def test_output_is_resized_to_size_and_limit(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "small"
    result = generate(opts(tiny_root, out, method="copy-source", size=(128, 88), limit=5, batch_size=2))
    assert result.num_pairs == 5 and len(pngs(out)) == 5
    for p in out.glob("*.png"):
        assert np.asarray(Image.open(p)).shape == (128, 88, 3)
    # A larger --limit later only adds pairs: the limit is not a pixel setting.
    assert generate(opts(tiny_root, out, method="copy-source", size=(128, 88), limit=8)).num_generated == 3


def test_copy_source_writes_the_source(tiny_root: Path, tmp_path: Path) -> None:
    from bench.data.deepfashion import load_image

    generate(opts(tiny_root, tmp_path / "c", method="copy-source", limit=3))
    for p in (tmp_path / "c").glob("*.png"):
        src = p.stem.split("_2_")[0] + ".jpg"
        expected = (load_image(tiny_root / "test_highres" / src, (256, 176)) * 255).round().to(torch.uint8)
        assert np.array_equal(np.asarray(Image.open(p)), expected.permute(1, 2, 0).numpy())


def test_bad_method_output_is_refused(tiny_root: Path, tmp_path: Path) -> None:
    class Broken(Noise):
        def generate(self, batch: PairBatch, generator: list[torch.Generator]) -> torch.Tensor:
            return torch.full((len(batch), 3, 8, 8), float("nan"))

    with pytest.raises(ConfigError, match="NaN"):
        generate(opts(tiny_root, tmp_path / "nan", method="noise"), method=Broken())
    assert not pngs(tmp_path / "nan")


def test_bad_options(tiny_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch-size"):
        generate(opts(tiny_root, tmp_path / "x", batch_size=0))
    with pytest.raises(ConfigError, match="unknown method 'pose-wrap'.*Did you mean 'pose-warp'"):
        generate(opts(tiny_root, tmp_path / "x", method="pose-wrap"))
    with pytest.raises(ConfigError, match="not a torch device"):
        generate(opts(tiny_root, tmp_path / "x", device="gpu0"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            generate(opts(tiny_root, tmp_path / "x", device="cuda"))
    with pytest.raises(ConfigError, match="takes no checkpoint"):
        generate(opts(tiny_root, tmp_path / "x", method="copy-source", checkpoint=str(tmp_path)))
    assert not (tmp_path / "x").exists()
