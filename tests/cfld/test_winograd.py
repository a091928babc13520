"""Winograd F(4x4,3x3) convolutions (CPU fp32 sampling): same results as torch's convolution within
fp32 rounding, only where they apply, and never on the training/autocast/other-device paths."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from _cfld_micro import MICRO_MODEL, one_thread  # noqa: F401 (one_thread: fixture used by pytestmark)

from methods.cfld import winograd
from methods.cfld.config import CFLDConfig
from methods.cfld.model import CFLDModel
from methods.cfld.pipeline import CFLDPipeline, SamplingSettings
from methods.cfld.vae import PixelCodec

pytestmark = pytest.mark.usefixtures("one_thread")


def _conv(c_in: int, c_out: int, bias: bool = True, seed: int = 0) -> torch.nn.Conv2d:
    torch.manual_seed(seed)
    return torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)


@pytest.mark.parametrize(
    ("n", "c_in", "c_out", "h", "w", "bias"),
    [
        (2, 256, 256, 16, 16, True),  # whole tiles
        (1, 256, 300, 13, 22, True),  # H and W not multiples of the 4x4 output tile
        (3, 320, 256, 5, 3, False),  # smaller than one tile, no bias
    ],
)
def test_matches_a_float64_convolution(n: int, c_in: int, c_out: int, h: int, w: int, bias: bool) -> None:
    conv = _conv(c_in, c_out, bias)
    x = torch.randn(n, c_in, h, w)
    with torch.inference_mode():
        want = F.conv2d(
            x.double(), conv.weight.double(), None if conv.bias is None else conv.bias.double(), padding=1
        )
        direct = conv(x)
        assert winograd.enable(conv) == 1
        got = conv(x)
    # The same sum in another order: a few 1e-5 on unit-variance inputs, as oneDNN's own ~1e-5.
    assert (got.double() - want).abs().max() < 1e-4
    assert (direct.double() - want).abs().max() < 1e-4
    assert not torch.equal(got, direct)  # the Winograd path did run
    assert got.shape == direct.shape and got.is_contiguous(memory_format=torch.channels_last)


def test_only_wide_plain_3x3_convolutions_switch() -> None:
    model = torch.nn.Sequential(
        _conv(256, 256),  # switches
        torch.nn.Conv2d(256, 256, 3, padding=1, stride=2),  # strided
        torch.nn.Conv2d(256, 256, 1),  # 1x1
        torch.nn.Conv2d(256, 256, 3, padding=1, groups=2),  # grouped
        torch.nn.Conv2d(256, 256, 3, padding=2, dilation=2),  # dilated
        torch.nn.Conv2d(64, 256, 3, padding=1),  # narrow input (tile transforms cost more than they save)
        torch.nn.Conv2d(256, 4, 3, padding=1),  # narrow output (the UNet's conv_out)
    )
    before = copy.deepcopy(model.state_dict())
    assert winograd.enable(model) == 1
    assert "forward" in model[0].__dict__ and all("forward" not in m.__dict__ for m in model[1:])
    after = model.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert winograd.disable(model) == 1 and "forward" not in model[0].__dict__


def test_training_autocast_and_double_take_the_direct_path_bit_for_bit() -> None:
    conv = _conv(256, 256)
    ref = copy.deepcopy(conv)
    winograd.enable(conv)
    x = torch.randn(1, 256, 8, 8, requires_grad=True)
    y = conv(x)  # grad mode: autograd through torch's convolution
    assert torch.equal(y, ref(x))
    y.sum().backward()
    assert conv.weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(conv(x), ref(x))
    with torch.no_grad():
        conv64, ref64 = copy.deepcopy(conv).double(), copy.deepcopy(ref).double()
        assert torch.equal(conv64(x.double()), ref64(x.double()))
        assert "_winograd_filters" not in conv.__dict__  # none of these calls transformed filters


def test_new_weights_are_transformed_again() -> None:
    conv, other = _conv(256, 256, seed=0), _conv(256, 256, seed=1)
    winograd.enable(conv)
    x = torch.randn(1, 256, 8, 8)
    with torch.inference_mode():
        first = conv(x)
    conv.load_state_dict(other.state_dict())  # in-place copy: same storage, new version
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), other(x), rtol=0, atol=1e-4)
        assert not torch.allclose(conv(x), first)
    conv.weight = torch.nn.Parameter(other.weight * 2)  # a new tensor
    with torch.inference_mode():
        torch.testing.assert_close(
            conv(x), F.conv2d(x, other.weight * 2, other.bias, padding=1), rtol=0, atol=2e-4
        )
    winograd.disable(conv)
    assert "_winograd_filters" not in conv.__dict__


def _wide_micro_model() -> CFLDModel:
    """The micro CFLD with 256-channel UNet blocks and pose adapter, so their convolutions switch."""
    cfg = {
        **MICRO_MODEL,
        "pose": {**MICRO_MODEL["pose"], "in_channels": 256, "channels": [256, 256, 256]},
        "appearance": {"ctx_dims": [256] * 9},  # the HGA biases' width = the up blocks' query width
        "unet": {"config": {**MICRO_MODEL["unet"]["config"], "block_out_channels": [256, 256, 256, 256]}},
    }
    torch.manual_seed(0)
    return CFLDModel(CFLDConfig.from_dict(cfg)).eval()


def test_pipeline_samples_the_same_images_with_winograd() -> None:
    """Whole sampling (pose adapter, every UNet step) with and without the fast path: the same
    images to fp32 rounding, and the method records which algorithm ran."""
    model = _wide_micro_model()
    settings = SamplingSettings.from_dict(
        {"scheduler": "ddim", "num_inference_steps": 2, "diffusion_size": (32, 32), "clip_sample": True}
    )
    g = torch.Generator().manual_seed(0)
    img, pose = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 21, 64, 64, generator=g)

    fast = CFLDPipeline(model, PixelCodec(2), settings, optimize_model=True)
    assert fast.winograd_layers > 0
    assert fast.conv3x3_algorithm() == {"algorithm": "winograd_f4x4_3x3", "layers": fast.winograd_layers}
    a = fast(img, pose, [torch.Generator().manual_seed(1)])
    assert "_winograd_filters" in model.pose_encoder.resnets[0].conv1.__dict__  # the fast path ran

    winograd.disable(model)
    direct = CFLDPipeline(model, PixelCodec(2), settings, optimize_model=True, winograd=False)
    assert direct.conv3x3_algorithm() == {"algorithm": "direct", "layers": 0}
    b = direct(img, pose, [torch.Generator().manual_seed(1)])
    assert (a - b).abs().max() < 1e-4


def test_not_enough_memory_for_the_filters_warns_and_stays_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    import methods.cfld.pipeline as pipeline_module

    model = _wide_micro_model()
    need = winograd.filter_bytes(model)
    assert need == 4 * sum(m.weight.numel() * 4 for m in model.modules() if winograd.eligible(m))
    monkeypatch.setattr(pipeline_module, "available_memory_bytes", lambda: need)  # needs <= half
    with pytest.warns(UserWarning, match=r"Winograd convolutions' filters need .* winograd: false"):
        pipe = CFLDPipeline(
            model, PixelCodec(2), SamplingSettings(diffusion_size=(32, 32)), optimize_model=True
        )
    assert pipe.winograd_layers == 0 and pipe.conv3x3_algorithm()["algorithm"] == "direct"
    monkeypatch.setattr(pipeline_module, "available_memory_bytes", lambda: 2 * need)
    again = CFLDPipeline(model, PixelCodec(2), SamplingSettings(diffusion_size=(32, 32)), optimize_model=True)
    assert again.winograd_layers > 0
