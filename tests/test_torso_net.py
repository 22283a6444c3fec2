"""The torso UNet's building blocks: DCNv2 against plain convolution, the two DCN backends,
and the network's shapes and starting point."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from talkstudio.core.torso import TorsoConfig, TorsoUNet
from talkstudio.core.torso.deform import (
    DeformBlock,
    ModulatedDeformConv2d,
    _modulated_deform_conv,
    modulated_deform_conv,
)

BACKENDS = ("torch", "torchvision")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dcn_with_zero_offsets_and_unit_masks_is_the_plain_conv(backend: str) -> None:
    torch.manual_seed(0)
    layer = ModulatedDeformConv2d(5, 7)
    layer.backend = backend
    x = torch.randn(2, 5, 11, 9)
    offset, mask = layer.offsets_and_mask(x)
    assert torch.count_nonzero(offset) == 0 and torch.all(mask == 1.0)
    want = F.conv2d(x, layer.weight, layer.bias, padding=1)
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dcn_integer_offset_samples_the_shifted_input(backend: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 3, 8, 10)
    w = torch.randn(4, 3, 3, 3)
    offset = torch.zeros(1, 18, 8, 10)
    offset[:, 1::2] = 1.0  # every tap looks one pixel to the right (dx = +1)
    mask = torch.full((1, 9, 8, 10), 0.5)
    got = modulated_deform_conv(x, offset, mask, w, None, backend=backend)
    # y(v, u) = Σ w[i, j] x(v + i - 1, u + j): the kernel window moved one pixel right
    want = 0.5 * F.conv2d(F.pad(x, (0, 2, 1, 1)), w)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_torch_reference_matches_torchvision_forward_and_backward() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 6, 9, 12, requires_grad=True)
    # offset groups 2, stride 2: output 5 × 6
    offset = (1.5 * torch.randn(2, 2 * 2 * 9, 5, 6)).requires_grad_()
    mask = torch.rand(2, 2 * 9, 5, 6).requires_grad_()
    w = torch.randn(4, 6, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    inputs = (x, offset, mask, w, b)
    ref = _modulated_deform_conv(x, offset, mask, w, stride=2, padding=1) + b.view(1, -1, 1, 1)
    tv = modulated_deform_conv(x, offset, mask, w, b, stride=2, padding=1, backend="torchvision")
    torch.testing.assert_close(ref, tv, rtol=1e-4, atol=1e-4)
    g_ref = torch.autograd.grad((ref * ref.detach().sin()).sum(), inputs)
    g_tv = torch.autograd.grad((tv * tv.detach().sin()).sum(), inputs)
    for name, a, c in zip(("x", "offset", "mask", "weight", "bias"), g_ref, g_tv):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-3, msg=f"gradient of {name}")


def test_deform_block_plain_switch_starts_from_the_same_function() -> None:
    torch.manual_seed(3)
    dcn, plain = DeformBlock(8, 4, deformable=True), DeformBlock(8, 4, deformable=False)
    plain.conv.weight.data.copy_(dcn.conv.weight)
    plain.conv.bias.data.copy_(dcn.conv.bias)
    x = torch.randn(2, 8, 10, 10)
    torch.testing.assert_close(dcn(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("deformable", "output"), [(True, "masked"), (False, "residual")])
@pytest.mark.parametrize("hw", [(32, 32), (48, 48), (40, 56), (17, 23)])
def test_unet_output_shape_and_identity_start(
    deformable: bool, output: str, hw: tuple[int, int]
) -> None:
    torch.manual_seed(4)
    cfg = TorsoConfig(
        base_width=4, depth=3, dcn_levels=(1, 2), deformable=deformable, output=output
    )
    net = TorsoUNet(cfg)
    h, w = hw
    bg, head = torch.rand(2, 3, h, w), torch.rand(2, 3, h, w)
    alpha = torch.rand(2, 1, h, w)
    out = net(bg, head * alpha, alpha)
    assert out.shape == (2, 3, h, w)
    # residual output, zero-initialised last layer: it starts as the head pasted on the plate
    torch.testing.assert_close(out, head * alpha + (1 - alpha) * bg)
    assert out.requires_grad


def test_widths_double_up_to_eight_c_and_plain_net_has_no_dcn() -> None:
    net = TorsoUNet(TorsoConfig(base_width=4, depth=5))
    assert net.widths == [4, 8, 16, 32, 32, 32]
    n_dcn = sum(isinstance(m, ModulatedDeformConv2d) for m in net.modules())
    assert n_dcn == 2
    plain = TorsoUNet(TorsoConfig(base_width=4, depth=5, deformable=False))
    assert not any(isinstance(m, ModulatedDeformConv2d) for m in plain.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())


def test_non_residual_net_outputs_its_own_frame() -> None:
    torch.manual_seed(5)
    net = TorsoUNet(TorsoConfig(base_width=4, depth=2, dcn_levels=(1,), output="direct"))
    bg, head, alpha = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16)
    out = net(bg, head, alpha)
    assert out.shape == (1, 3, 16, 16)
    assert not torch.allclose(out, head, atol=1e-2)


def test_config_rejects_bad_settings_and_round_trips() -> None:
    with pytest.raises(ValueError, match="dcn_levels"):
        TorsoConfig(depth=2, dcn_levels=(3,)).check()
    with pytest.raises(ValueError, match="output"):
        TorsoConfig(output="sum").check()
    with pytest.raises(ValueError, match="crop_scale"):
        TorsoConfig(crop_scale_min=0.0).check()
    cfg = TorsoConfig.from_preset("paper")
    assert (cfg.image_size, cfg.base_width) == (512, 64)
    assert TorsoConfig.from_dict(cfg.to_dict()) == cfg
    preview = TorsoConfig.from_preset("preview", steps=7)
    assert (preview.image_size, preview.base_width, preview.steps) == (128, 32, 7)


def test_masked_output_passes_the_opaque_head_through() -> None:
    torch.manual_seed(6)
    net = TorsoUNet(TorsoConfig(base_width=4, depth=2, dcn_levels=(1,), output="masked"))
    torch.nn.init.normal_(net.to_rgb.weight)  # any weights
    bg, head = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    alpha = torch.zeros(1, 1, 16, 16)
    alpha[..., 4:10, 5:12] = 1.0
    out = net(bg, head * alpha, alpha)
    inside = alpha.expand_as(out) > 0
    torch.testing.assert_close(out[inside], head[inside])
    assert (out - bg)[~inside].abs().mean() > 1e-2  # around the head the net paints


def test_compositor_at_another_size_keeps_the_plate_and_head_detail() -> None:
    """At twice the network's size the correction is resized, not the frame: a sharp plate and
    head come through sharp, and the correction matches the network's own at its size."""
    from talkstudio.core.torso import Compositor

    torch.manual_seed(3)
    net = TorsoUNet(TorsoConfig(image_size=32, base_width=8, depth=3, dcn_levels=(2,)))
    comp = Compositor(net)
    big = 64
    yy, xx = torch.meshgrid(torch.arange(big), torch.arange(big), indexing="ij")
    plate = ((yy + xx) % 2).float().expand(3, big, big).clone()  # 1-px checkerboard
    opacity = torch.zeros(big, big)
    opacity[20:40, 24:44] = 1.0
    head = torch.rand(3, big, big) * opacity
    out = comp(plate, head, opacity)  # [3, 64, 64]
    # Zero-initialised output layer: the frame is exactly the full-size composite.
    torch.testing.assert_close(out, (head + (1 - opacity) * plate).clamp(0, 1))
    # A trained-looking network: outside the head, frame − plate is the resized correction.
    torch.nn.init.normal_(net.to_rgb.weight, std=0.05)
    out = comp(plate, head, opacity)
    small = [
        F.interpolate(t[None], size=(32, 32), mode="bilinear", antialias=True)
        for t in (plate, head, opacity[None])
    ]
    corr = F.interpolate(net.correction(*small), size=(big, big), mode="bilinear", antialias=True)
    want = (plate + corr[0]).clamp(0, 1)
    outside = opacity == 0
    torch.testing.assert_close(out[:, outside], want[:, outside], atol=1e-5, rtol=1e-5)
    assert torch.equal(out[:, 30, 30], head[:, 30, 30].clamp(0, 1))  # opaque head untouched


def test_rim_softening_blurs_across_the_outline_and_leaves_the_rest() -> None:
    from talkstudio.core.torso.data import soften_rim

    alpha = torch.zeros(3, 1, 24, 24)
    alpha[:, :, 6:18, 6:18] = 1.0  # a 12-px square head
    alpha[2, :, 0:10, 0:10] = 1.0  # one reaching the image's corner
    out = soften_rim(alpha, torch.tensor([1.5, 0.1, 1.5]))
    row = out[0, 0, 12]
    assert torch.equal(out[1], alpha[1])  # a tiny width: unchanged
    assert 0.0 < float(row[5]) < 0.5 < float(row[6]) < 1.0  # soft on both sides of the outline
    assert float(row[5] + row[6]) == pytest.approx(1.0, abs=1e-5)  # through one half on it
    assert float(row[12]) == pytest.approx(1.0) and float(row[0]) == pytest.approx(0.0)
    assert torch.all(row[:12].diff() >= 0)
    # the image's border is no outline: the corner head keeps full opacity along it
    assert float(out[2, 0, 0, 0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rim_px"):
        TorsoConfig(rim_px=-1.0).check()
