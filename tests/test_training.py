"""The trainers' shared run bookkeeping: restore, save_checkpoint, TrainLoop, network_check."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from talkstudio.core import checkpoint
from talkstudio.core.errors import CheckpointError, DeviceError
from talkstudio.core.progress import Job, Progress, run_job
from talkstudio.core.training import (
    TrainLoop,
    network_check,
    resolve_device,
    restore,
    save_checkpoint,
)

KIND = "toy"


@dataclass
class ToyConfig:
    """A part config as network_check sees it; ``every`` is the checkpoint interval."""

    width: int = 8
    steps: int = 10
    every: int = 4

    @property
    def seed(self) -> int:
        return 3

    def check(self) -> None:
        if self.width < 1:
            raise ValueError("width must be positive")

    def architecture(self) -> dict[str, Any]:
        return {"width": self.width}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyConfig:
        return cls(**data)


def _net(cfg: ToyConfig) -> torch.nn.Module:
    torch.manual_seed(cfg.seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, cfg.width), torch.nn.Tanh(), torch.nn.Linear(cfg.width, 1)
    )


def _parts(cfg: ToyConfig) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    net = _net(cfg)
    return net, torch.optim.Adam(net.parameters(), lr=0.05)


def _save(
    folder: Path, cfg: ToyConfig, net: torch.nn.Module, opt: torch.optim.Optimizer
) -> Callable[[int], None]:
    def save(step: int) -> None:
        save_checkpoint(folder, KIND, net, asdict(cfg), opt, step, {"subject": "x"}, {"seed": 3})

    return save


def _check(folder: Path, cfg: ToyConfig) -> Callable[[dict[str, Any]], None]:
    return network_check(folder, "toy", cfg, ToyConfig.from_dict)


def toy_train(folder: Path, cfg: ToyConfig) -> Job[tuple[int, float]]:
    """A resumable job shaped like the head/torso trainers: fit y = sum(x) with Adam."""
    net, opt = _parts(cfg)
    start = restore(folder, KIND, net, opt, _check(folder, cfg))
    loop = TrainLoop(start, cfg.steps, cfg.every, _save(folder, cfg, net, opt))
    with loop:
        for step in loop:
            gen = torch.Generator().manual_seed(1000 + step)  # the batch depends on the step only
            x = torch.randn(16, 4, generator=gen)
            loss = ((net(x)[:, 0] - x.sum(1)) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            yield Progress("toy", step, cfg.steps, loop.done(step, float(loss.detach())))
    return start, loop.final_loss


def _moments(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [s["exp_avg"] for s in opt.state.values()]


def test_resume_after_a_cancel_continues_at_the_saved_step(tmp_path: Path) -> None:
    cfg = ToyConfig()
    start, loss = run_job(toy_train(tmp_path / "straight", cfg))
    assert start == 0 and np.isfinite(loss)
    job = toy_train(tmp_path / "resumed", cfg)
    for p in job:
        if p.step == 6:  # between the checkpoints of steps 4 and 8
            break
    job.close()
    raw = json.loads((tmp_path / "resumed" / "config.json").read_text())
    info = json.loads((tmp_path / "resumed" / "train_state.json").read_text())["info"]
    assert raw["meta"] == {"subject": "x", "step": 6} and info == {"seed": 3, "step": 6}
    steps: list[int] = []
    start, _ = run_job(toy_train(tmp_path / "resumed", cfg), lambda p: steps.append(p.step))
    assert start == 6 and steps == [7, 8, 9, 10]
    a, _ = checkpoint.load_model(tmp_path / "straight", KIND)
    b, _ = checkpoint.load_model(tmp_path / "resumed", KIND)
    for key in a:  # same batches and restored Adam moments: the same weights as one run
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_cancel_on_a_checkpoint_step_and_the_last_step_writes_nothing_more(tmp_path: Path) -> None:
    cfg = ToyConfig(steps=8, every=4)
    saved: list[int] = []
    loop = TrainLoop(0, cfg.steps, cfg.every, saved.append)

    def job() -> Job[None]:
        with loop:
            for step in loop:
                yield Progress("toy", step, cfg.steps, loop.done(step, float(step)))

    gen = job()
    for p in gen:
        if p.step == 4:
            break
    gen.close()
    assert saved == [4]  # saved by the loop, not again on close
    saved.clear()
    loop = TrainLoop(4, cfg.steps, cfg.every, saved.append)
    run_job(job())
    assert saved == [8] and loop.final_loss == pytest.approx(np.mean([5, 6, 7, 8]))
    assert loop.done(8, 0.25).startswith("loss 0.25")
    # small losses (stage 1 works in normalised units) keep their significant digits
    assert loop.done(8, 3.2e-5).startswith("loss 3.2e-05")


def test_optimizer_state_of_another_step_keeps_weights_and_resets_moments(tmp_path: Path) -> None:
    cfg = ToyConfig(steps=5, every=5)
    run_job(toy_train(tmp_path, cfg))
    weights, _ = checkpoint.load_model(tmp_path, KIND)
    # the same moments are restored when the steps agree
    net, opt = _parts(cfg)
    assert restore(tmp_path, KIND, net, opt, _check(tmp_path, cfg)) == 5
    assert len(_moments(opt)) == 4 and all(float(m.abs().sum()) > 0 for m in _moments(opt))
    # a run stopped between writing the weights and the optimizer: steps 5 and 3
    state = json.loads((tmp_path / "train_state.json").read_text())
    state["info"]["step"] = 3
    (tmp_path / "train_state.json").write_text(json.dumps(state))
    net, opt = _parts(cfg)
    assert restore(tmp_path, KIND, net, opt, _check(tmp_path, cfg)) == 5
    assert len(opt.state) == 0
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, weights[key], msg=key)
    # a damaged optimizer state: the same
    (tmp_path / "train_state.safetensors").write_bytes(b"broken")
    net, opt = _parts(cfg)
    assert restore(tmp_path, KIND, net, opt, _check(tmp_path, cfg)) == 5
    assert len(opt.state) == 0
    torch.testing.assert_close(net.state_dict()["0.weight"], weights["0.weight"])


def test_unusable_checkpoints_say_how_to_start_over(tmp_path: Path) -> None:
    cfg = ToyConfig(steps=4)
    net, opt = _parts(cfg)
    assert restore(tmp_path / "none", KIND, net, opt, _check(tmp_path, cfg)) == 0
    run_job(toy_train(tmp_path, cfg))
    wider = ToyConfig(width=16, steps=8)
    with pytest.raises(CheckpointError, match=r"another network: width 8 \(now 16\)\. Train"):
        run_job(toy_train(tmp_path, wider))
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"truncated.*to start over, delete {tmp_path}\)"):
        run_job(toy_train(tmp_path, ToyConfig(steps=8)))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"damaged.*to start over, delete"):
        run_job(toy_train(tmp_path, ToyConfig(steps=8)))


def test_resolve_device_says_what_to_use_instead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without CUDA
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(
        DeviceError, match=r"CUDA is not available on this machine; use the CPU \(--device cpu\)"
    ):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match=r"unknown device 'tpu': use auto, cpu or cuda"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match=r"'meta' is not supported"):
        resolve_device("meta")


def test_cuda_without_cuda_is_a_clear_error_in_every_trainer_and_the_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from _stage1_helpers import write_envelope_subject

    from talkstudio.app.cli import main
    from talkstudio.core.engine import Engine
    from talkstudio.core.head import HeadConfig, train_head
    from talkstudio.core.stage1.config import Stage1Config
    from talkstudio.core.stage1.train import train_stage1
    from talkstudio.core.torso import TorsoConfig, train_torso

    root = write_envelope_subject(tmp_path / "env", seconds=2.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    jobs = [
        train_stage1(root, Stage1Config(steps=2), "cuda"),
        train_head(root, HeadConfig(steps=2), "cuda"),
        train_torso(root, TorsoConfig(steps=2), "cuda"),
    ]
    for job in jobs:
        with pytest.raises(DeviceError, match="CUDA is not available"):
            run_job(job)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        Engine.open(root, device="cuda")
    for part in ("head", "torso"):  # the CLI prints it, no traceback
        assert main(["train", part, str(root), "--steps", "1", "--device", "cuda"]) == 1
        assert "CUDA is not available on this machine" in capsys.readouterr().err


def test_cancel_at_a_record_before_the_last_steps_save_keeps_that_step() -> None:
    """The head yields a "baking" record after its last optimizer step and before that step's
    save; a cancel there saves the last step (it was not saved yet)."""
    saved: list[int] = []
    loop = TrainLoop(0, 6, 4, saved.append)

    def job() -> Job[None]:
        with loop:
            for step in loop:
                if step == 6:
                    yield Progress("toy", step, 6, "finishing")  # before loop.done(6, …)
                yield Progress("toy", step, 6, loop.done(step, 1.0))

    gen = job()
    for p in gen:
        if p.message == "finishing":
            break
    gen.close()
    assert saved == [4, 6] and loop.saved == 6
