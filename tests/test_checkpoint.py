"""Checkpoints: safetensors + JSON round trip, resume state, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from talkstudio.core import checkpoint
from talkstudio.core.errors import CheckpointError


def _net(width: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2)
    )


def test_round_trip(tmp_path: Path) -> None:
    net = _net()
    checkpoint.save_model(tmp_path, "head", net.state_dict(), {"width": 8}, {"steps": 3})
    state, raw = checkpoint.load_model(tmp_path, "head")
    assert raw["config"] == {"width": 8} and raw["meta"]["steps"] == 3
    other = _net()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    checkpoint.load_into(other, state, "test")
    x = torch.randn(5, 4)
    torch.testing.assert_close(other(x), net(x))


def test_wrong_kind_and_config(tmp_path: Path) -> None:
    checkpoint.save_model(tmp_path, "torso", _net(8).state_dict(), {"width": 8})
    with pytest.raises(CheckpointError, match="'torso' model, not a 'head'"):
        checkpoint.load_model(tmp_path, "head")
    state, _ = checkpoint.load_model(tmp_path, "torso")
    with pytest.raises(CheckpointError, match=r"another configuration.*shape"):
        checkpoint.load_into(_net(16), state, "torso checkpoint")


def test_truncated_weights(tmp_path: Path) -> None:
    checkpoint.save_model(tmp_path, "head", _net().state_dict(), {})
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load_model(tmp_path, "head")


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="train it first"):
        checkpoint.load_model(tmp_path / "nothing", "stage1")


def test_train_state_resumes_adam(tmp_path: Path) -> None:
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 4)).square().mean().backward()
        opt.step()
    checkpoint.save_train_state(tmp_path, opt, {"step": 3})
    net2 = _net()
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
    assert checkpoint.load_train_state(tmp_path, opt2) == {"step": 3}
    x = torch.randn(8, 4)
    for o, n in ((opt, net), (opt2, net2)):
        o.zero_grad()
        n(x).square().mean().backward()
        o.step()
    for a, b in zip(net.parameters(), net2.parameters()):
        torch.testing.assert_close(a, b)


def test_damaged_train_state_starts_fresh(tmp_path: Path) -> None:
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    (tmp_path / "train_state.json").write_text("{broken")
    (tmp_path / "train_state.safetensors").write_bytes(b"xx")
    assert checkpoint.load_train_state(tmp_path, opt) is None
