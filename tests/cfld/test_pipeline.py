"""CFLD sampling: guidance formulas, one batched UNet call per step, per-pair randomness."""

from __future__ import annotations

import pytest
import torch
from _cfld_micro import one_thread  # noqa: F401 (one_thread: fixture used by pytestmark)
from torch import nn

from bench.errors import ConfigError
from methods.cfld.guidance import BRANCHES, GuidanceScales, batch_conditions, combine
from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
from methods.cfld.schedulers import make_scheduler
from methods.cfld.vae import PixelCodec

B, N, D = 2, 4, 8


pytestmark = pytest.mark.usefixtures("one_thread")


class FakeCFLD(nn.Module):
    """The CFLDModel sampling API with a UNet whose output depends on every conditioning path,
    each in a different way, so a wrong branch layout changes the result."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.learnable_vector = nn.Parameter(torch.randn(1, N, D, generator=g))
        self.proj = nn.Parameter(torch.randn(D, channels, generator=g) * 0.1)
        self.pose_w = nn.Parameter(torch.randn(channels, generator=g) * 0.1)
        self.calls: list[int] = []

    def encode_appearance(self, img: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = img.mean(dim=(1, 2, 3))
        prompt = m[:, None, None] + torch.arange(N * D, dtype=img.dtype).reshape(1, N, D) / (N * D)
        return prompt, {"block_3_cross_attn_q": img[:, :, :4, :4].mean(1, keepdim=True) * 0.5}

    def encode_pose(self, pose: torch.Tensor) -> list[torch.Tensor]:
        return [pose[:, :3].mean(dim=1, keepdim=True)]

    def unet_forward(self, x, t, prompt, pose_features=None, hga_biases=None):  # noqa: ANN001, ANN201
        self.calls.append(x.shape[0])
        c = (prompt.mean(1) @ self.proj)[:, :, None, None]
        out = 0.1 * x + c + 0.01 * t.float()[:, None, None, None] / 1000
        if pose_features is not None:
            p = nn.functional.interpolate(pose_features[0], size=x.shape[-2:])
            out = out + p * self.pose_w[None, :, None, None]
        if hga_biases is not None:
            out = out + 0.3 * hga_biases["block_3_cross_attn_q"].mean(dim=(1, 2, 3))[:, None, None, None] ** 2
        return out


def _inputs(bsz: int = B, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(bsz, 3, 32, 32, generator=g), torch.rand(bsz, 21, 32, 32, generator=g)


@pytest.mark.parametrize("gtype", sorted(BRANCHES))
def test_batched_guidance_equals_separate_branch_calls(gtype: str) -> None:
    """The batched call + combine equals running each official branch on its own."""
    model = FakeCFLD()
    img, pose_map = _inputs()
    prompt, hga = model.encode_appearance(img * 2 - 1)
    pose = model.encode_pose(pose_map)
    x = torch.randn(B, 3, 8, 8)
    t = torch.full((B,), 981)
    scales = GuidanceScales(full=2.5, down=1.5, all=0.7, guidance=3.0)
    p, ps, hs = batch_conditions(gtype, prompt, model.learnable_vector, pose, hga)
    n = len(BRANCHES[gtype])
    got = combine(gtype, model.unet_forward(torch.cat([x] * n), t.repeat(n), p, ps, hs), scales)

    lv = model.learnable_vector.expand(B, -1, -1)
    zero_pose = [torch.zeros_like(f) for f in pose]
    zero_hga = {k: torch.zeros_like(v) for k, v in hga.items()}
    uc = model.unet_forward(x, t, lv, zero_pose, zero_hga)
    down = model.unet_forward(x, t, lv, pose, zero_hga)
    updown = model.unet_forward(x, t, lv, pose, hga)
    cdown = model.unet_forward(x, t, prompt, pose, zero_hga)
    full = model.unet_forward(x, t, prompt, pose, hga)
    s = scales
    want = {
        "uc_full": uc + s.full * (full - uc),
        "updown_full": updown + s.full * (full - updown),
        "down_full": down + s.full * (full - down),
        "uc_down_full": uc + s.down * (down - uc) + s.full * (full - down),
        "uc_down_updown_cdown": uc
        + s.down * (down - uc)
        + s.all * (updown - down)
        + s.guidance * (cdown - down),
        "uc_down_updown_full": uc + s.down * (down - uc) + s.all * (updown - down) + s.full * (full - updown),
        "full": full,
    }[gtype]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    if gtype != "full":  # The branch layout is not trivially symmetric: dropping the guidance changes it.
        assert not torch.allclose(got, full)


def test_no_guidance_equals_uc_down_full_at_unit_scales() -> None:
    """`full` is uc_down_full at 1.0/1.0 in one branch instead of three (float rounding apart)."""
    model = FakeCFLD()
    img, pose_map = _inputs()
    prompt, hga = model.encode_appearance(img * 2 - 1)
    pose = model.encode_pose(pose_map)
    x, t = torch.randn(B, 3, 8, 8), torch.full((B,), 500)
    got = {}
    for gtype in ("full", "uc_down_full"):
        p, ps, hs = batch_conditions(gtype, prompt, model.learnable_vector, pose, hga)
        n = len(BRANCHES[gtype])
        out = model.unet_forward(torch.cat([x] * n), t.repeat(n), p, ps, hs)
        got[gtype] = combine(gtype, out, GuidanceScales(full=1.0, down=1.0))
    torch.testing.assert_close(got["full"], got["uc_down_full"], rtol=1e-5, atol=1e-6)


def _pipeline(model: FakeCFLD, **settings: object) -> CFLDPipeline:
    base = {"scheduler": "ddpm", "num_inference_steps": 4, "diffusion_size": (16, 16)}
    return CFLDPipeline(model, PixelCodec(2), SamplingSettings.from_dict({**base, **settings}))


def test_one_unet_call_per_step_with_all_branches() -> None:
    model = FakeCFLD(channels=12)
    img, pose_map = _inputs()
    out = _pipeline(model, num_inference_steps=5)(
        img, pose_map, [torch.Generator().manual_seed(i) for i in range(B)]
    )
    assert model.calls == [3 * B] * 5
    assert out.shape == (B, 3, 16, 16) and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim", "dpmsolver++"])
def test_per_pair_generators_make_outputs_batch_independent(scheduler: str) -> None:
    model = FakeCFLD(channels=12)
    pipe = _pipeline(model, scheduler=scheduler)
    img, pose_map = _inputs(3)

    def gens(seeds: list[int]) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in seeds]

    together = pipe(img, pose_map, gens([10, 11, 12]))
    alone = torch.cat([pipe(img[i : i + 1], pose_map[i : i + 1], gens([10 + i])) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    again = pipe(img, pose_map, gens([10, 11, 12]))
    assert torch.equal(together, again)
    other = pipe(img, pose_map, gens([20, 11, 12]))
    assert not torch.allclose(other[0], together[0]) and torch.allclose(other[1:], together[1:], atol=1e-5)


def test_ddpm_noise_draws_come_from_the_generators() -> None:
    """DDPM is ancestral: the initial noise and every step's noise come from the pair's generator,
    and the global RNG is never touched."""
    model = FakeCFLD(channels=12)
    pipe = _pipeline(model, num_inference_steps=4)
    img, pose_map = _inputs(1)
    g = torch.Generator().manual_seed(5)
    global_state = torch.random.get_rng_state()
    pipe(img, pose_map, [g])
    assert torch.equal(torch.random.get_rng_state(), global_state)
    ref = torch.Generator().manual_seed(5)
    for _ in range(1 + 4):  # initial latent + one variance draw per step (all 4 timesteps are > 0)
        torch.randn((1, 12, 8, 8), generator=ref)
    assert torch.equal(g.get_state(), ref.get_state())


def test_scheduler_defaults_follow_sd15() -> None:
    s = make_scheduler("ddpm")
    s.set_timesteps(50)
    assert s.timesteps[0].item() == 981 and s.timesteps[-1].item() == 1 and len(s.timesteps) == 50
    assert s.config.beta_schedule == "scaled_linear" and s.config.beta_start == 0.00085
    assert SamplingSettings().num_inference_steps == 50 and SamplingSettings().guidance_type == "uc_down_full"
    assert SamplingSettings().scales.down == 2.0 and SamplingSettings().scales.full == 2.0


@pytest.mark.parametrize(
    "bad",
    [
        {"guidance_type": "nope"},
        {"scheduler": "euler_x"},
        {"dtype": "fp8"},
        {"steps": 3},
        {"scheduler": "dpmsolver++", "clip_sample": True},
        {"prediction_type": "x0"},
    ],
)
def test_bad_settings_raise_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SamplingSettings.from_dict(bad)


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v_prediction"])
def test_prediction_type_reaches_the_scheduler(prediction_type: str) -> None:
    """The same model output means noise, x0 or v depending on how the model was trained: the
    scheduler must interpret it accordingly (x0 = (x_t - sqrt(1-a) eps) / sqrt(a), etc.)."""
    pipe = _pipeline(FakeCFLD(12), scheduler="ddim", prediction_type=prediction_type)
    assert pipe.settings.to_dict()["prediction_type"] == prediction_type
    sched = pipe.scheduler
    assert sched.config.prediction_type == prediction_type
    sched.set_timesteps(10)
    t = sched.timesteps[3]
    x0 = torch.rand(1, 12, 4, 4) * 2 - 1
    eps = torch.randn(1, 12, 4, 4)
    a = sched.alphas_cumprod[t]
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    out = {"epsilon": eps, "sample": x0, "v_prediction": a.sqrt() * eps - (1 - a).sqrt() * x0}[
        prediction_type
    ]
    pred_x0 = sched.step(out, t, xt).pred_original_sample
    torch.testing.assert_close(pred_x0, x0, rtol=1e-4, atol=1e-4)


def test_pixel_codec_is_lossless() -> None:
    x = torch.rand(2, 3, 16, 12) * 2 - 1
    codec = PixelCodec(2)
    z = codec.encode(x)
    assert z.shape == (2, 12, 8, 6)
    assert torch.equal(codec.decode(z), x)
