"""The hash grid encoding: exact interpolation, the hash, gradients, backends."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from talkstudio.core.head.encoding import (
    HashGridConfig,
    TcnnHashGrid,
    make_hash_grid,
    tcnn_available,
)
from talkstudio.core.head.hashgrid import GridLayout, TorchHashGrid

SMALL = GridLayout(levels=4, features=2, log2_table_size=10, base_resolution=4, max_resolution=64)


def _naive(table: torch.Tensor, layout: GridLayout, x: list[float]) -> list[float]:
    """Point-by-point reference written independently: Python ints, uint32 hash, 8 corners."""
    out = []
    offsets = layout.offsets()
    for level in range(layout.levels):
        s, res, size = layout.scale(level), layout.resolution(level), layout.rows(level)
        pos = [min(max(c, 0.0), 1.0) * s + 0.5 for c in x]
        lo = [math.floor(p) for p in pos]
        acc = [0.0] * layout.features
        for cx in (0, 1):
            for cy in (0, 1):
                for cz in (0, 1):
                    v = (lo[0] + cx, lo[1] + cy, lo[2] + cz)
                    if res**3 <= size:
                        idx = v[0] + v[1] * res + v[2] * res * res
                    else:
                        idx = ((v[0] * 1) ^ (v[1] * 2654435761) ^ (v[2] * 805459861)) & 0xFFFFFFFF
                    idx %= size
                    w = 1.0
                    for d, c in enumerate((cx, cy, cz)):
                        f = pos[d] - lo[d]
                        w *= f if c else 1.0 - f
                    for k in range(layout.features):
                        acc[k] += w * float(table[offsets[level] + idx, k])
        out += acc
    return out


def test_layout_follows_instant_ngp_sizes() -> None:
    lay = GridLayout(16, 2, 16, 16, 2048)
    assert lay.resolution(0) == 16  # scale 15 -> ceil 15 + 1
    assert lay.rows(0) == 16**3
    assert lay.rows(15) == 2**16
    assert lay.scale(15) == pytest.approx(2047.0, rel=1e-9)
    assert lay.offsets()[-1] == sum(lay.rows(i) for i in range(16))


def test_matches_naive_reference_on_dense_and_hashed_levels() -> None:
    torch.manual_seed(0)
    grid = TorchHashGrid(SMALL)
    dense = [SMALL.resolution(i) ** 3 <= SMALL.rows(i) for i in range(SMALL.levels)]
    assert any(dense) and not all(dense)  # the test covers both index kinds
    with torch.no_grad():
        grid.params.uniform_(-1.0, 1.0)
    x = torch.rand(50, 3, dtype=torch.float64)
    x[0] = torch.tensor([0.0, 1.0, 0.5])
    got = grid.double()(x)
    want = torch.tensor(
        [_naive(grid.params.detach(), SMALL, p.tolist()) for p in x], dtype=torch.float64
    )
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_interpolation_reproduces_a_linear_field_exactly() -> None:
    lay = GridLayout(1, 3, 20, 8, 8)  # one dense level, 8^3 vertices
    grid = TorchHashGrid(lay).double()
    res = lay.resolution(0)
    i = torch.arange(res**3)
    coords = torch.stack([i % res, (i // res) % res, i // (res * res)], -1).double()
    with torch.no_grad():
        grid.params.zero_()
        grid.params[: res**3] = coords  # feature = vertex coordinate
    x = torch.rand(200, 3, dtype=torch.float64) * 0.9 + 0.02
    torch.testing.assert_close(grid(x), x * lay.scale(0) + 0.5, rtol=0, atol=1e-12)


def test_table_gradient_is_exact() -> None:
    grid = TorchHashGrid(SMALL).double()
    x = torch.rand(7, 3, dtype=torch.float64)
    from talkstudio.core.head.hashgrid import _Interpolate, grid_indices_and_weights

    rows, weights = grid_indices_and_weights(x, SMALL)
    table = torch.randn_like(grid.params, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _Interpolate.apply(t, rows, weights), (table,))


def test_chunked_forward_equals_one_pass() -> None:
    grid = TorchHashGrid(SMALL, chunk=13)
    with torch.no_grad():
        grid.params.normal_()
    x = torch.rand(100, 3)
    whole = TorchHashGrid(SMALL, chunk=1000)
    whole.load_state_dict(grid.state_dict())
    torch.testing.assert_close(grid(x), whole(x))


def test_tcnn_request_falls_back_with_one_notice_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    from talkstudio.core.head import encoding

    encoding._NOTICES.clear()
    cfg = HashGridConfig(levels=2, log2_table_size=8, max_resolution=32, implementation="tcnn")
    with caplog.at_level(logging.WARNING, logger=encoding.__name__):
        a = make_hash_grid(cfg, "cpu")
        b = make_hash_grid(cfg, "cpu")
    assert isinstance(a, TorchHashGrid) and isinstance(b, TorchHashGrid)
    assert len([r for r in caplog.records if "hash grid" in r.message]) == 1
    with pytest.raises(ValueError, match="unknown hash grid implementation"):
        make_hash_grid(HashGridConfig(implementation="cuda"), "cpu")  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_grid_cuda_matches_cpu_forward_and_backward() -> None:
    torch.manual_seed(1)
    lay = GridLayout(16, 2, 16, 16, 2048)
    cpu = TorchHashGrid(lay)
    with torch.no_grad():
        cpu.params.normal_(0, 0.1)
    gpu = TorchHashGrid(lay).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(20000, 3)
    g = torch.randn(20000, lay.out_dim)
    (cpu(x) * g).sum().backward()
    out = gpu(x.cuda())
    (out * g.cuda()).sum().backward()
    torch.testing.assert_close(out.cpu(), cpu(x).detach(), rtol=1e-5, atol=1e-6)
    assert cpu.params.grad is not None and gpu.params.grad is not None
    torch.testing.assert_close(gpu.params.grad.cpu(), cpu.params.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(
    not (tcnn_available() and torch.cuda.is_available()),
    reason="tinycudann is not installed here (it needs CUDA and is not on PyPI)",
)
def test_tcnn_matches_torch_reference_forward_and_backward() -> None:
    torch.manual_seed(2)
    lay = GridLayout(16, 2, 16, 16, 2048)
    ref = TorchHashGrid(lay).cuda()
    with torch.no_grad():
        ref.params.uniform_(-0.1, 0.1)
    fused = TcnnHashGrid(lay).cuda()
    fused.load_state_dict(ref.state_dict())
    x = torch.rand(50000, 3, device="cuda")
    g = torch.randn(50000, lay.out_dim, device="cuda")
    out_ref, out_fused = ref(x), fused(x)
    # tiny-cuda-nn computes in half precision.
    torch.testing.assert_close(out_fused, out_ref, rtol=1e-2, atol=2e-3)
    (out_ref * g).sum().backward()
    (out_fused * g).sum().backward()
    grad_fused = fused.flat.grad.view_as(ref.params).float()
    assert list(fused.state_dict()) == ["params"]
    torch.testing.assert_close(grad_fused, ref.params.grad, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("block", [7, 16, 1000])
def test_point_blocks_give_the_same_rows_and_weights(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from talkstudio.core.head import hashgrid

    x = torch.rand(50, 3)
    want_rows, want_weights = hashgrid.grid_indices_and_weights(x, SMALL)
    monkeypatch.setattr(hashgrid, "POINT_BLOCK", block)
    rows, weights = hashgrid.grid_indices_and_weights(x, SMALL)
    assert torch.equal(rows, want_rows) and torch.equal(weights, want_weights)
    empty_rows, empty_weights = hashgrid.grid_indices_and_weights(x[:0], SMALL)
    assert empty_rows.shape == (SMALL.levels, 0, 8) and empty_weights.shape == (SMALL.levels, 0, 8)
