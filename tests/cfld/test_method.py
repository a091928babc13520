"""The ``cfld`` plugin: registry, checkpoint folders (ours and official), inputs, generation."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from _cfld_micro import MICRO_MODEL, one_thread  # noqa: F401 (one_thread: fixture used by pytestmark)

from bench.api import PairBatch
from bench.errors import ConfigError, DataError, MissingWeightError
from bench.registry import available_methods, get_method_class
from methods.cfld.config import CFLDConfig
from methods.cfld.method import CFLDMethod
from methods.cfld.model import CFLDModel
from methods.cfld.train import save_final
from methods.cfld.train_settings import TrainSettings
from methods.cfld.vae import PixelCodec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as `pgpis train` writes it, with a micro pixel-space model."""
    torch.manual_seed(0)
    model = CFLDModel(CFLDConfig.from_dict(MICRO_MODEL))
    folder = tmp_path_factory.mktemp("ckpt") / "model"
    settings = TrainSettings.from_dict({"sampling": {"scheduler": "ddim", "num_inference_steps": 3}})
    save_final(model, PixelCodec(2), settings, folder, {"steps": 0})
    return folder


def _batch(n: int, size: tuple[int, int], pose_size: tuple[int, int], seed: int = 0) -> PairBatch:
    g = torch.Generator().manual_seed(seed)
    return PairBatch(
        pair_ids=[f"a{i}_2_b{i}" for i in range(n)],
        source_names=[f"a{i}.jpg" for i in range(n)],
        target_names=[f"b{i}.jpg" for i in range(n)],
        source_image=torch.rand(n, 3, *size, generator=g),
        source_keypoints=torch.zeros(n, 18, 2),
        target_keypoints=torch.zeros(n, 18, 2),
        source_pose=torch.rand(n, 21, *pose_size, generator=g),
        target_pose=torch.rand(n, 21, *pose_size, generator=g),
    )


def test_registered_and_trainable() -> None:
    assert available_methods()["cfld"] == "methods.cfld.method:CFLDMethod"
    cls = get_method_class("cfld")
    assert cls is CFLDMethod and cls.info.trainable


def test_our_folder_generates_deterministically_per_pair(ours: Path) -> None:
    method = CFLDMethod.from_config({}, checkpoint=str(ours))
    spec = method.inputs
    assert spec.image_size == (64, 64) and spec.pose_kind == "cfld21" and spec.pose_size == (64, 64)
    assert not spec.with_target_image
    s = method.settings()
    assert s["sampling"]["scheduler"] == "ddim" and s["sampling"]["num_inference_steps"] == 3
    assert s["sampling"]["dtype"] == "fp32" and s["latent"] == {"kind": "pixel", "factor": 2}
    batch = _batch(3, (64, 64), (64, 64))

    def gens() -> list[torch.Generator]:
        return [torch.Generator().manual_seed(100 + i) for i in range(3)]

    out = method.generate(batch, gens())
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, method.generate(batch, gens()))
    # Batch independence: pair 1 alone with its own generator gives the same image.
    one = PairBatch(
        pair_ids=batch.pair_ids[1:2],
        source_names=batch.source_names[1:2],
        target_names=batch.target_names[1:2],
        source_image=batch.source_image[1:2],
        source_keypoints=batch.source_keypoints[1:2],
        target_keypoints=batch.target_keypoints[1:2],
        source_pose=batch.source_pose[1:2],
        target_pose=batch.target_pose[1:2],
    )
    torch.testing.assert_close(method.generate(one, [gens()[1]]), out[1:2], rtol=1e-5, atol=1e-5)


def test_config_overrides_sampling(ours: Path) -> None:
    method = CFLDMethod.from_config(
        {
            "scheduler": "dpmsolver++",
            "num_inference_steps": 2,
            "guidance_type": "uc_full",
            "scales": {"full": 3.0},
        },
        checkpoint=str(ours),
    )
    s = method.settings()["sampling"]
    assert (s["scheduler"], s["num_inference_steps"], s["guidance_type"], s["scales"]["full"]) == (
        "dpmsolver++", 2, "uc_full", 3.0,
    )  # fmt: skip
    assert method.generate(_batch(1, (64, 64), (64, 64)), [torch.Generator().manual_seed(0)]).shape == (
        1,
        3,
        32,
        32,
    )


def test_official_folder_loads_with_a_local_vae(tmp_path: Path) -> None:
    """The official two-file layout (tiny widths) + an SD-style VAE folder generate at gt_img_size."""
    from methods.cfld.checkpoint import save_official
    from methods.cfld.pretrained import build_vae

    torch.manual_seed(0)
    # Keep the official 64x64-latent geometry cheap: 128x128 condition image -> 32/16/8 features.
    cfg = CFLDConfig.from_dict(
        {
            "base": "tiny",
            "gt_img_size": [256, 256],
            "swin": {"img_size": [128, 128]},
            "pose": {"img_size": [128, 128]},
        }
    )
    model = CFLDModel(cfg)
    save_official(model, tmp_path / "official")
    vae = build_vae(cfg.vae.config)
    vae.save_pretrained(tmp_path / "sd" / "vae")
    model_cfg = {
        "base": "tiny",
        "gt_img_size": [256, 256],
        "swin": {"img_size": [128, 128]},
        "pose": {"img_size": [128, 128]},
    }
    method = CFLDMethod.from_config(
        {"model": model_cfg, "vae": str(tmp_path / "sd"), "num_inference_steps": 1},
        checkpoint=str(tmp_path / "official"),
    )
    assert method.settings()["checkpoint_format"] == "official"
    assert method.settings()["sampling"]["scheduler"] == "ddpm"
    for name, p in method.pipeline.model.state_dict().items():
        torch.testing.assert_close(p, model.state_dict()[name])
    out = method.generate(_batch(1, (128, 128), (128, 128)), [torch.Generator().manual_seed(0)])
    assert out.shape == (1, 3, 256, 256)  # generated at the diffusion size; the engine resizes


def test_clear_errors(tmp_path: Path, ours: Path) -> None:
    with pytest.raises(ConfigError, match="--checkpoint"):
        CFLDMethod.from_config({}, checkpoint=None)
    with pytest.raises(DataError, match="does not exist"):
        CFLDMethod.from_config({}, checkpoint=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="pytorch_model.bin"):
        CFLDMethod.from_config({}, checkpoint=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="unknown config key"):
        CFLDMethod.from_config({"steps": 3}, checkpoint=str(ours))
    with pytest.raises(ConfigError, match="guidance type"):
        CFLDMethod.from_config({"guidance_type": "cfg"}, checkpoint=str(ours))
    # An official folder needs the SD-1.5 VAE: offline and absent, the error names the files.
    (tmp_path / "off").mkdir()
    for name in ("pytorch_model.bin", "pytorch_model_1.bin"):
        (tmp_path / "off" / name).write_bytes(b"")
    with pytest.raises(MissingWeightError, match="vae"):
        CFLDMethod.from_config({"model": {"base": "tiny"}}, checkpoint=str(tmp_path / "off"))


def test_half_precision_on_a_cpu_without_support_warns(ours: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast on a CPU without AVX512-BF16/AMX is emulated and ~7x slower than fp32: say so."""
    import methods.cfld.cpu_support as cpu_support

    monkeypatch.setattr(cpu_support, "cpu_flags", lambda: {"avx2", "fma"})
    with pytest.warns(UserWarning, match=r"bf16 on this CPU has no hardware support \(no avx512_bf16"):
        CFLDMethod.from_config({"dtype": "bf16"}, checkpoint=str(ours))
    monkeypatch.setattr(cpu_support, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CFLDMethod.from_config({"dtype": "bf16"}, checkpoint=str(ours))
        CFLDMethod.from_config({}, checkpoint=str(ours))  # auto = fp32 on CPU: never a warning
