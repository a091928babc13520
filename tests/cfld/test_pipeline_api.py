"""The diffusers-style CFLDPipeline API on a micro model: inputs (PIL, keypoints), per-call overrides,
latents, step callbacks, output types, schedulers, building from our folder and from the official
weights (files or state dicts) with the official config's TEST section, and no mutation of a
caller's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _cfld_micro import MICRO_MODEL, one_thread, write_micro_checkpoint  # noqa: F401 (fixture)
from diffusers import DDIMScheduler
from PIL import Image

from bench.api import image_tensor, pose_map
from bench.errors import ConfigError
from methods.cfld import winograd
from methods.cfld.checkpoint import official_state_dicts, save_official
from methods.cfld.config import CFLDConfig
from methods.cfld.guidance import batch_conditions, combine
from methods.cfld.method import CFLDMethod
from methods.cfld.model import CFLDModel
from methods.cfld.pipeline import CFLDPipeline, SamplingSettings, per_pair_noise
from methods.cfld.vae import PixelCodec

pytestmark = pytest.mark.usefixtures("one_thread")

STAND = np.array(
    [(40, 88), (62, 88), (64, 62), (100, 56), (134, 54), (64, 114), (100, 120), (134, 122), (132, 72),
     (180, 70), (226, 70), (132, 104), (180, 106), (226, 106), (34, 82), (34, 94), (38, 76), (38, 100)]
)  # fmt: skip


@pytest.fixture(scope="module")
def model() -> CFLDModel:
    torch.manual_seed(0)
    m = CFLDModel(CFLDConfig.from_dict(MICRO_MODEL)).eval()
    with torch.no_grad():  # make the zero-initialised HGA path count too
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return m


def _pipe(model: CFLDModel, **settings: object) -> CFLDPipeline:
    base = {"scheduler": "ddpm", "num_inference_steps": 3, "diffusion_size": (32, 32), "clip_sample": True}
    return CFLDPipeline(model, PixelCodec(2), SamplingSettings.from_dict({**base, **settings}))


def _photo(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (256, 176, 3), dtype=np.uint8))


def _gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_call_equals_the_sampling_loop_written_out(model: CFLDModel) -> None:
    """What one call does, spelled out: encoders once, one batched UNet call per step mixed by the
    guidance formula, the scheduler step with the pair's generator, the codec's decode."""
    pipe = _pipe(model)
    img, pose = torch.rand(2, 3, 64, 64), torch.rand(2, 21, 64, 64)
    got = pipe(img, pose, generator=_gens(1, 2))
    gens = _gens(1, 2)
    s = pipe.settings
    with torch.no_grad():
        prompt, hga = model.encode_appearance(img * 2 - 1)
        feats = model.encode_pose(pose)
        conds = batch_conditions(s.guidance_type, prompt, model.learnable_vector, list(feats), dict(hga))
        sched = type(pipe.scheduler).from_config(pipe.scheduler.config)
        sched.set_timesteps(3)
        x = per_pair_noise((12, 16, 16), gens, torch.device("cpu"), torch.float32) * sched.init_noise_sigma
        for t in sched.timesteps:
            out = model.unet_forward(torch.cat([x] * 3), t.reshape(1).expand(6), *conds)
            x = sched.step(combine(s.guidance_type, out, s.scales), t, x, generator=gens).prev_sample
        want = (PixelCodec(2).decode(x) * 0.5 + 0.5).clamp(0, 1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_pil_source_and_keypoint_pose_need_no_files(model: CFLDModel) -> None:
    pipe = _pipe(model)
    photo = _photo()
    as_tensor = image_tensor(photo, (64, 64))[None]  # what the dataset loader makes of a file
    maps = torch.from_numpy(pose_map(STAND, "cfld21", (64, 64)))[None]
    a = pipe(source_image=photo, target_pose=STAND, generator=_gens(3))
    b = pipe(source_image=as_tensor, target_pose=maps, generator=_gens(3))
    assert torch.equal(a, b)
    # a tensor of another size is resized to the condition size
    big = pipe(source_image=image_tensor(photo), target_pose=maps, generator=_gens(3))
    assert big.shape == a.shape
    # one source, several poses: a pose sequence, each image as if alone
    raised = STAND.copy()
    raised[4], raised[7] = (16, 36), (16, 140)
    seq = pipe(source_image=photo, target_pose=np.stack([STAND, raised]), generator=_gens(3, 4))
    torch.testing.assert_close(seq[:1], a, rtol=0, atol=1e-5)
    assert not torch.allclose(seq[1], seq[0])
    with pytest.raises(ConfigError, match=r"target_pose maps must be \(21, 64, 64\)"):
        pipe(photo, torch.rand(1, 21, 32, 32))


def test_overrides_apply_to_one_call_only(model: CFLDModel) -> None:
    pipe = _pipe(model)
    steps: list[int] = []

    def count(p, i, t, tensors):  # noqa: ANN001, ANN202
        steps.append(i)

    img, pose = _photo(), STAND
    base = pipe(img, pose, generator=_gens(0))
    two = pipe(img, pose, generator=_gens(0), num_inference_steps=2, callback_on_step_end=count)
    assert steps == [0, 1] and pipe.settings.num_inference_steps == 3
    assert not torch.allclose(base, two)
    other = pipe(img, pose, generator=_gens(0), guidance_type="uc_full", guidance_scales={"full": 3.0})
    assert not torch.allclose(base, other) and pipe.settings.guidance_type == "uc_down_full"
    same = pipe(img, pose, generator=_gens(0), guidance_scales=2.0)  # every scale 2.0 = the defaults
    assert torch.equal(same, base)
    with pytest.raises(ConfigError, match="unknown scale"):
        pipe(img, pose, guidance_scales={"ful": 1.0})
    with pytest.raises(ConfigError, match="guidance type"):
        pipe(img, pose, guidance_type="cfg")


def test_latents_replace_the_initial_noise(model: CFLDModel) -> None:
    pipe = _pipe(model, scheduler="ddim")  # deterministic after the initial noise
    noise = torch.randn((1, *pipe.latent_shape()), generator=torch.Generator().manual_seed(9))
    a = pipe(_photo(), STAND, generator=_gens(9))
    b = pipe(_photo(), STAND, latents=noise)
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match=r"latents must have shape \(1, 12, 16, 16\)"):
        pipe(_photo(), STAND, latents=torch.zeros(1, 4, 16, 16))


def test_step_callback_observes_replaces_and_stops(model: CFLDModel) -> None:
    pipe = _pipe(model, scheduler="ddim", num_inference_steps=4)
    seen: list[tuple[int, int, torch.Tensor, torch.Tensor]] = []

    def watch(p, i, t, tensors):  # noqa: ANN001, ANN202
        seen.append((i, int(t), tensors["latents"].clone(), tensors["pred_original_sample"]))
        if i == 1:
            p.interrupt = True

    last = pipe(_photo(), STAND, generator=_gens(0), output_type="latent", callback_on_step_end=watch,
                callback_on_step_end_tensor_inputs=["latents", "pred_original_sample"])  # fmt: skip
    assert [s[0] for s in seen] == [0, 1] and seen[0][1] > seen[1][1]  # stopped after 2 of 4 steps
    assert torch.equal(last, seen[-1][2]) and seen[-1][3].shape == last.shape
    zeros = pipe(
        _photo(),
        STAND,
        generator=_gens(0),
        callback_on_step_end=lambda p, i, t, d: {"latents": d["latents"] * 0},
    )
    assert torch.equal(zeros, torch.full_like(zeros, 0.5))  # decode(0) = mid grey
    with pytest.raises(ConfigError, match="callback_on_step_end_tensor_inputs"):
        pipe(_photo(), STAND, callback_on_step_end_tensor_inputs=["noise"])


def test_output_types(model: CFLDModel) -> None:
    pipe = _pipe(model)
    pt = pipe(_photo(), STAND, generator=_gens(1))
    pil = pipe(_photo(), STAND, generator=_gens(1), output_type="pil")
    assert isinstance(pil, list) and pil[0].size == (32, 32)
    want = np.rint(pt[0].permute(1, 2, 0).numpy() * np.float32(255)).astype(np.uint8)
    assert np.array_equal(np.asarray(pil[0]), want)
    assert pipe(_photo(), STAND, generator=_gens(1), output_type="latent").shape == (1, 12, 16, 16)
    with pytest.raises(ConfigError, match="output_type"):
        pipe(_photo(), STAND, output_type="np")


def test_scheduler_by_name_or_instance(model: CFLDModel) -> None:
    pipe = _pipe(model)
    ddim = pipe(_photo(), STAND, generator=_gens(2), scheduler="ddim")
    assert pipe.settings.scheduler == "ddpm"
    instance = DDIMScheduler.from_config(
        {**pipe.scheduler.config, "clip_sample": True, "set_alpha_to_one": False}, prediction_type="epsilon"
    )
    assert torch.equal(pipe(_photo(), STAND, generator=_gens(2), scheduler=instance), ddim)
    with pytest.raises(ConfigError, match="predicts 'sample' but the model was trained for 'epsilon'"):
        pipe(_photo(), STAND, scheduler=DDIMScheduler(prediction_type="sample"))


def test_the_callers_model_is_not_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)  # so the micro model has convolutions to switch
    torch.manual_seed(0)
    model = CFLDModel(CFLDConfig.from_dict(MICRO_MODEL)).eval()
    before = {k: (v.data_ptr(), v.stride()) for k, v in model.state_dict().items()}
    pipe = _pipe(model)
    pipe(_photo(), STAND, generator=_gens(0))
    assert pipe.winograd_layers == 0
    assert {k: (v.data_ptr(), v.stride()) for k, v in model.state_dict().items()} == before
    assert not any("_winograd_filters" in m.__dict__ or "forward" in m.__dict__ for m in model.modules())
    fast = CFLDPipeline(model, PixelCodec(2), pipe.settings, optimize_model=True)  # opt-in, documented
    assert fast.winograd_layers > 0
    assert model.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    winograd.disable(model)


def test_from_pretrained_equals_the_plugin(tmp_path: Path) -> None:
    folder = write_micro_checkpoint(tmp_path / "model", {"scheduler": "ddpm", "num_inference_steps": 2})
    pipe = CFLDPipeline.from_pretrained(folder)
    method = CFLDMethod.from_config({}, checkpoint=str(folder))
    assert pipe.settings == method.pipeline.settings
    img, pose = (
        image_tensor(_photo(), (64, 64))[None],
        torch.from_numpy(pose_map(STAND, "cfld21", (64, 64)))[None],
    )
    from bench.api import PairBatch

    batch = PairBatch(
        ["a_2_b"], ["a.jpg"], ["b.jpg"], img, torch.zeros(1, 18, 2), torch.zeros(1, 18, 2), target_pose=pose
    )
    assert torch.equal(pipe(_photo(), STAND, generator=_gens(4)), method.generate(batch, _gens(4)))
    assert CFLDPipeline.from_pretrained(folder, num_inference_steps=1).settings.num_inference_steps == 1


def _official_yaml(cfg: CFLDConfig, test: dict | None = None, scheduler: str | None = None) -> str:
    """An official yacs override YAML for ``cfg``'s geometry (as configs/*.yaml of YanzuoLu/CFLD)."""
    a = cfg.appearance
    model = {
        "COND_STAGE_CONFIG": {"EMBED_DIM": cfg.swin.embed_dim, "DEPTHS": cfg.swin.depths,
                              "NUM_HEADS": cfg.swin.num_heads, "DROP_PATH_RATE": 0.0},
        "APPEARANCE_GUIDANCE_CONFIG": {"INNER_DIMS": a.inner_dims, "CTX_DIMS": a.ctx_dims,
                                       "EMBED_DIMS": a.embed_dims, "HEADS": a.heads, "DEPTH": a.depth},
        "POSE_GUIDANCE_CONFIG": {"IN_CHANNELS": cfg.pose.in_channels, "CHANNELS": cfg.pose.channels},
        "DECODER_CONFIG": {"N_CTX": cfg.decoder.n_ctx, "CTX_DIM": cfg.decoder.ctx_dim,
                           "DEPTH": cfg.decoder.depth, "HEADS": cfg.decoder.heads},
    }  # fmt: skip
    if scheduler:
        model["SCHEDULER_CONFIG"] = {"NAME": scheduler}
    raw = {
        "MODEL": model,
        "INPUT": {"GT": {"IMG_SIZE": list(cfg.gt_img_size)}, "COND": {"IMG_SIZE": list(cfg.swin.img_size)},
                  "POSE": {"IMG_SIZE": list(cfg.pose.img_size)}},
    }  # fmt: skip
    if test is not None:
        raw["TEST"] = test
    return yaml.safe_dump(raw)


def test_from_official_honours_the_test_section(model: CFLDModel, tmp_path: Path) -> None:
    cfg = model.config
    test = {"NUM_INFERENCE_STEPS": 2, "GUIDANCE_TYPE": "uc_full", "FULL_GUIDANCE_SCALE": 1.5,
            "IMG_SIZE": [48, 32], "MICRO_BATCH_SIZE": 4}  # fmt: skip
    text = _official_yaml(cfg, test, scheduler="ddim")
    state = official_state_dicts(model)  # in memory, as torch.load returns the two files
    pipe = CFLDPipeline.from_official(state, text, unet_config=cfg.unet.config, codec=PixelCodec(2))
    s = pipe.settings
    assert (s.scheduler, s.num_inference_steps, s.guidance_type, s.scales.full) == ("ddim", 2, "uc_full", 1.5)
    assert pipe.output_size == (48, 32)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in pipe.model.state_dict().items())
    out = pipe(_photo(), STAND, generator=_gens(0))
    assert out.shape == (1, 3, 48, 32)  # TEST.IMG_SIZE, resized bicubic + antialias as the official eval
    # The same weights from the two official files on disk, and no SD-1.5 VAE needed with a codec.
    save_official(model, tmp_path / "official")
    from_files = CFLDPipeline.from_official(
        tmp_path / "official", text, unet_config=cfg.unet.config, codec=PixelCodec(2)
    )
    assert torch.equal(from_files(_photo(), STAND, generator=_gens(0)), out)
    # Arguments agree with the config or are refused; what the config leaves open may be set.
    same = CFLDPipeline.from_official(
        state, text, unet_config=cfg.unet.config, codec=PixelCodec(2), num_inference_steps=2
    )
    assert same.settings.num_inference_steps == 2
    opened = CFLDPipeline.from_official(
        state, text, unet_config=cfg.unet.config, codec=PixelCodec(2), guidance_scales={"down": 3.0}
    )
    assert opened.settings.scales.down == 3.0 and opened.settings.scales.full == 1.5
    with pytest.raises(
        ConfigError, match="num_inference_steps=5 conflicts with the official config, which sets it to 2"
    ):
        CFLDPipeline.from_official(
            state, text, unet_config=cfg.unet.config, codec=PixelCodec(2), num_inference_steps=5
        )


@pytest.mark.parametrize(
    ("test", "scheduler", "message"),
    [
        ({"DDIM_INVERSION_STEPS": 10}, None, "DDIM_INVERSION_STEPS > 0"),
        ({"NUM_INFERENCE_STEP": 3}, None, r"unknown TEST key\(s\) \['NUM_INFERENCE_STEP'\]"),
        ({}, "euler", "NAME 'euler' is not implemented here"),
        ({"GUIDANCE_TYPE": "cfg"}, None, "guidance type"),
    ],
)
def test_from_official_refuses_what_it_cannot_honour(
    model: CFLDModel, test: dict, scheduler: str | None, message: str
) -> None:
    text = _official_yaml(model.config, test, scheduler)
    with pytest.raises(ConfigError, match=message):
        CFLDPipeline.from_official(
            official_state_dicts(model), text, unet_config=model.config.unet.config, codec=PixelCodec(2)
        )


def test_official_folder_with_a_pixel_codec_needs_no_vae(model: CFLDModel, tmp_path: Path) -> None:
    """The plugin's config key ``latent`` replaces the SD-1.5 VAE of an official folder (offline here:
    a VAE look-up would fail)."""
    save_official(model, tmp_path / "official")
    method = CFLDMethod.from_config(
        {"model": MICRO_MODEL, "latent": {"kind": "pixel", "factor": 2}, "num_inference_steps": 1},
        checkpoint=str(tmp_path / "official"),
    )
    assert method.settings()["latent"] == {"kind": "pixel", "factor": 2}
    from bench.api import PairBatch

    img, pose = torch.rand(1, 3, 64, 64), torch.rand(1, 21, 64, 64)
    batch = PairBatch(
        ["a_2_b"], ["a.jpg"], ["b.jpg"], img, torch.zeros(1, 18, 2), torch.zeros(1, 18, 2), target_pose=pose
    )
    assert method.generate(batch, _gens(0)).shape == (1, 3, 32, 32)
    with pytest.raises(ConfigError, match="'latent' and 'vae'"):
        CFLDMethod.from_config(
            {"model": MICRO_MODEL, "latent": {"kind": "pixel"}, "vae": "x"},
            checkpoint=str(tmp_path / "official"),
        )
