"""The VGG perceptual loss: torchvision's loader on weights written to a temporary cache, and the
offline path (no weights: off, said once)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from talkstudio.core import perceptual


def _write_random_vgg19(hub_dir: Path) -> dict[str, torch.Tensor]:
    """A randomly initialised VGG-19 trunk saved where torchvision's cache keeps the real one."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    trunk = make_layers(cfgs["E"])
    state = {f"features.{k}": v.clone() for k, v in trunk.state_dict().items()}
    path = perceptual.vgg_weights_path(hub_dir)
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def test_loader_reads_the_cached_weights(tmp_path: Path) -> None:
    state = _write_random_vgg19(tmp_path)
    loss = perceptual.load_perceptual("cpu", hub_dir=tmp_path)
    assert loss is not None
    got = loss.features.state_dict()
    assert len(loss.features) == perceptual.VGG19_LAYERS["relu5_1"] + 1
    for key, value in got.items():
        torch.testing.assert_close(value, state[f"features.{key}"])
    assert all(not p.requires_grad for p in loss.parameters())
    assert "on" in perceptual.perceptual_notice(tmp_path)

    torch.manual_seed(1)
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    y = torch.rand(2, 3, 48, 48)
    assert loss(y, y).item() == 0.0
    d_far = loss(x, y)
    d_near = loss(y + 0.01 * (x.detach() - y), y)
    assert d_far.item() > d_near.item() > 0.0
    d_far.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_without_weights_the_term_is_off_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="talkstudio.core.perceptual"):
        assert perceptual.load_perceptual("cpu", hub_dir=tmp_path) is None
        assert perceptual.load_perceptual("cpu", hub_dir=tmp_path) is None
    notices = [r for r in caplog.records if "VGG perceptual loss is off" in r.getMessage()]
    assert len(notices) == 1
    assert "off" in perceptual.perceptual_notice(tmp_path)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
