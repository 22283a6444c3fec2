"""A team of processes that share each optimizer step (core.data_parallel), and the head trained
by one: gradients added up over the members, the same weights everywhere, the loss of a patch
split into shares, the occupancy grid measured in halves, cancel and failures."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest
import torch

from talkstudio.core.data_parallel import Team, TeamError
from talkstudio.core.head import HeadConfig, HeadModel, train_head
from talkstudio.core.head.occupancy import OccupancyGrid

BBOX = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])


def _batch(rank: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 * rank + step)
    return torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)


def _net() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    net[0].bias.requires_grad_(False)  # never has a gradient: must keep none
    return net, torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.05)


def _has_loss(rank: int, step: int) -> bool:
    return not (rank == 1 and step == 1)  # at step 1 the helper's share has no loss


def _loss(net: torch.nn.Module, rank: int, step: int) -> torch.Tensor:
    x, y = _batch(rank, step)
    loss = torch.nn.functional.mse_loss(net(x), y)
    return loss if _has_loss(rank, step) else loss.detach()  # no gradients: a constant


def _member_steps(team: Team, steps: int) -> tuple[torch.nn.Module, list[float]]:
    net, opt = _net()
    params = list(net.parameters())
    sums = []
    step = 0
    while team.go(step < steps):
        opt.zero_grad(set_to_none=True)
        loss = _loss(net, team.rank, step)
        if loss.requires_grad:
            loss.backward()
        stepped, total = team.sum_gradients(params, loss.requires_grad, [float(loss.detach())])
        assert stepped
        sums.append(total[0])
        opt.step()
        step += 1
    return net, sums


def _helper(team: Team, out: str, steps: int, fail: bool) -> None:
    if fail:
        raise ValueError("the helper's data is unreadable")
    net, sums = _member_steps(team, steps)
    peak = torch.tensor([3.0, 2.0, float(team.rank)])
    team.maximum_(peak)
    torch.save({"state": net.state_dict(), "sums": sums, "peak": peak}, out)


def test_a_team_of_two_takes_the_step_of_one_process_over_both_batches(tmp_path: Path) -> None:
    out = tmp_path / "helper.pt"
    team = Team.lead(2, _helper, (str(out), 3, False), threads=1)
    assert (team.rank, team.size) == (0, 2)
    net, sums = _member_steps(team, 3)
    peak = torch.tensor([1.0, 5.0, 0.0])
    team.maximum_(peak)
    team.close(clean=True)
    assert not mp.active_children(), "the helper must have ended"
    helper = torch.load(out)
    # Both members hold the same weights ...
    for key, value in net.state_dict().items():
        torch.testing.assert_close(helper["state"][key], value, rtol=0, atol=0, msg=key)
    assert helper["sums"] == sums
    assert helper["peak"].tolist() == [3.0, 5.0, 1.0]
    assert peak.tolist() == [3.0, 5.0, 1.0]
    # ... and they are those of one process minimising the sum of the members' losses (at
    # step 1 the helper's is a constant).
    ref, opt = _net()
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        loss = _loss(ref, 0, step) + _loss(ref, 1, step)
        loss.backward()
        assert sums[step] == pytest.approx(float(loss.detach()), rel=1e-5)
        opt.step()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert net[0].bias.grad is None, "a parameter without gradients must keep none"
    solo = Team.solo()
    assert solo.go(True) and not solo.go(False)
    assert solo.sum_gradients([], True, [2.5]) == (True, [2.5])


def test_a_helper_that_fails_ends_the_team_with_its_reason(tmp_path: Path) -> None:
    team = Team.lead(2, _helper, (str(tmp_path / "x.pt"), 3, True), threads=1)
    with pytest.raises(TeamError, match="the helper's data is unreadable"):
        team.go(True)
    team.close(clean=False)
    assert not mp.active_children()


def test_the_occupancy_grid_measured_in_shares_and_combined_is_the_whole_update() -> None:
    def density(x: torch.Tensor) -> torch.Tensor:
        return 40.0 * torch.exp(-4.0 * (x * x).sum(dim=1))

    whole = OccupancyGrid(BBOX, 12)
    whole.update(density, 5.0, jitter=False)
    halves = [OccupancyGrid(BBOX, 12) for _ in range(2)]
    for i, grid in enumerate(halves):
        grid.update(density, 5.0, jitter=False, share=(i, 2))
    assert not torch.equal(halves[0].density, whole.density)  # each measured only half
    merged = torch.maximum(halves[0].density, halves[1].density)
    torch.testing.assert_close(merged, whole.density)
    # combine: what a team's maximum_ does, here with the other half at hand
    grid = OccupancyGrid(BBOX, 12)
    grid.update(density, 5.0, jitter=False, share=(0, 2), combine=lambda t: t.copy_(merged))
    assert torch.equal(grid.bitfield, whole.bitfield) and whole.occupancy > 0


@pytest.fixture(scope="module")
def synth_subject(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkstudio.core.synthetic import SynthConfig, write_synthetic

    out = tmp_path_factory.mktemp("synth")
    return Path(
        write_synthetic(out, SynthConfig(seed=1, seconds=1.6, size=64), video=False).subject_dir
    )


TINY = dict(
    image_size=32,
    patch_size=8,
    grid_levels=4,
    grid_log2_table_size=12,
    grid_max_resolution=64,
    grid_implementation="torch",
    occupancy_resolution=16,
    occupancy_interval=5,
    step_size=0.05,
    bake_frames=4,
    checkpoint_every=5,
    preview_every=4,
    processes=2,
)


def test_the_head_trains_in_a_team_of_two_resumes_and_cancels(
    synth_subject: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "head"
    records = list(train_head(synth_subject, HeadConfig(steps=9, **TINY), "cpu", out_dir=out))
    assert any("2 processes" in r.message for r in records)
    steps = [r for r in records if r.losses]
    assert [r.step for r in steps] == list(range(1, 10)) and {r.total for r in records} == {9}
    assert [r.step for r in steps if r.preview is not None] == [4, 8, 9]
    assert [r.step for r in steps if "occupancy" in r.metrics] == [5, 9]
    assert "baked" in steps[-1].message
    parts = steps[3].losses  # the whole patch's, added up over the two shares
    assert parts["loss"] == pytest.approx(
        10 * parts["smooth_l1"] + 5 * parts["alpha"] + parts["eye"] + parts.get("mouth", 0.0),
        rel=1e-4,
    )
    assert not mp.active_children(), "the helper must have ended with the run"
    model = HeadModel.load(out)
    assert json.loads((out / "config.json").read_text())["meta"]["step"] == 9
    assert 0 < model.grid.occupancy < 1

    # One process resumes what a team began.
    solo = HeadConfig(steps=11, **(TINY | {"processes": 1}))
    records = list(train_head(synth_subject, solo, "cpu", out_dir=out))
    assert [r.step for r in records if r.losses] == [10, 11]
    assert not any("processes" in r.message for r in records)
    # Cancel between two team steps: the step reached is saved and the helper stops.
    longer = HeadConfig(steps=20, **(TINY | {"checkpoint_every": 100}))
    job = train_head(synth_subject, longer, "cpu", out_dir=out)
    for rec in job:
        if rec.step == 14 and rec.losses:
            break
    job.close()
    assert json.loads((out / "config.json").read_text())["meta"]["step"] == 14
    assert not mp.active_children()
    again = [r.step for r in train_head(synth_subject, longer, "cpu", out_dir=out) if r.losses]
    assert again == list(range(15, 21))
