"""Landmark encodings (Eq. 7, 8a, 8b; Table III) and the sparse first layer of the field."""

from __future__ import annotations

import math

import pytest
import torch

from talkstudio.core.geometry import rotation_from_euler
from talkstudio.core.head.field import ConditionedLinear, spherical_harmonics, trunc_exp
from talkstudio.core.head.landmark_encoding import (
    ENCODING_KINDS,
    LandmarkEncoding,
    depth_embedding,
    quaternion_to_rotation,
)


def _scene(n: int = 3000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lms = torch.randn(68, 3, generator=g) * 0.3
    # Points clustered around the landmarks (so that many pairs exist) plus far ones.
    near = lms[torch.randint(0, 68, (n // 2,), generator=g)] + 0.08 * torch.randn(
        n // 2, 3, generator=g
    )
    far = torch.rand(n - n // 2, 3, generator=g) * 4 - 2
    rot = torch.tensor(rotation_from_euler(0.1, -0.3, 0.05), dtype=torch.float32)
    return torch.cat([near, far]), lms, rot


def _dense_reference(enc: LandmarkEncoding, x, lms, rot) -> torch.Tensor:
    """Eq. 8a / 7 for every pair with an explicit Sigma^-1, truncated at the cutoff distance."""
    delta = x[:, None, :] - lms[None]  # [N, K, 3]
    if enc.kind == "keypoint":
        m2 = delta.square().sum(-1) / 0.05**2
    else:
        inv = torch.linalg.inv(enc.covariance())  # [K, 3, 3]
        m2 = torch.einsum("nki,kij,nkj->nk", delta, inv, delta)
    w = torch.exp(-0.5 * m2)
    w = torch.where(m2 < enc.cutoff**2, w, torch.zeros_like(w))
    if enc.kind == "gaussian_no_depth":
        return w
    dz = (delta @ rot.T)[..., 2]  # camera-frame depth of the offset
    return (w[..., None] * depth_embedding(dz.reshape(-1)).reshape(*dz.shape, 5)).reshape(
        len(x), -1
    )


@pytest.mark.parametrize("form", ["pairs", "rows"])
@pytest.mark.parametrize("kind", ["gaussian", "gaussian_no_depth", "keypoint"])
def test_sparse_pairs_equal_dense_equation(kind: str, form: str) -> None:
    x, lms, rot = _scene()
    enc = LandmarkEncoding(kind, dense_fraction=2.0 if form == "pairs" else 0.0)  # type: ignore[arg-type]
    if kind != "keypoint":
        with torch.no_grad():  # a non-trivial learned state: rotated, anisotropic
            enc.quaternion.copy_(torch.randn(68, 4))
            enc.log_scale.copy_(math.log(0.05) + 0.4 * torch.randn(68, 3))
    code = enc(x, lms, rot)
    if form == "pairs":
        assert code.values is not None and code.values.shape[0] > 500 and code.matrix is None
    else:
        assert code.matrix is not None and code.values is None
    dense = code.dense(68)
    assert dense.shape == (len(x), enc.out_dim)
    torch.testing.assert_close(dense, _dense_reference(enc, x, lms, rot), rtol=1e-4, atol=1e-6)


def test_table_iii_dimensions() -> None:
    dims = {k: LandmarkEncoding(k).out_dim for k in ENCODING_KINDS}  # type: ignore[arg-type]
    assert dims["gaussian"] == 340 and dims["keypoint"] == 340 and dims["gaussian_no_depth"] == 68
    assert dims["posenc"] == 204 * 9 and dims["mlp"] == 64
    assert [LandmarkEncoding(k).per_point for k in ENCODING_KINDS] == [
        False,
        False,
        True,
        True,
        True,
    ]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown landmark encoding"):
        LandmarkEncoding("fourier")  # type: ignore[arg-type]


def test_gaussian_starts_isotropic_and_rotates_with_its_quaternion() -> None:
    enc = LandmarkEncoding("gaussian")
    torch.testing.assert_close(enc.covariance(), 0.05**2 * torch.eye(3).expand(68, 3, 3))
    with torch.no_grad():
        # Rotate landmark 0 by 90 degrees about z and stretch its local x axis to 0.2.
        enc.quaternion[0] = torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)])
        enc.log_scale[0] = torch.log(torch.tensor([0.2, 0.05, 0.05]))
    lms = torch.zeros(68, 3)
    lms[1:] = 10.0  # keep the other landmarks far away
    # 1 sigma along head y (the wide axis, 0.2); 3 and 4 sigma along head x (narrow, 0.05).
    pts = torch.tensor([[0.0, 0.2, 0.0], [0.15, 0.0, 0.0], [0.2, 0.0, 0.0]])
    code = enc(pts, lms, torch.eye(3)).dense(68).reshape(3, 68, 5)
    # gamma(d_z) with d_z = 0 is [0, 0, 1, 0, 1]: the weight sits in columns 2 and 4.
    assert code[0, 0, 2].item() == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert code[1, 0, 2].item() == pytest.approx(math.exp(-0.5 * 9), rel=1e-4)
    assert code[2, 0, 2].item() == 0.0  # 4 sigma: beyond the 3.5 sigma cutoff
    rot = quaternion_to_rotation(enc.quaternion[:1])[0]
    torch.testing.assert_close(rot @ rot.T, torch.eye(3), atol=1e-6, rtol=0)


def test_keypoint_is_fixed_and_depth_term_uses_camera_axis() -> None:
    enc = LandmarkEncoding("keypoint")
    assert not list(enc.parameters())
    lms = torch.full((68, 3), 10.0)
    lms[0] = 0.0
    # Camera looking along head -x: camera z axis = head x axis.
    rot = torch.tensor(rotation_from_euler(0.0, -math.pi / 2, 0.0), dtype=torch.float32)
    x = torch.tensor([[0.05, 0.0, 0.0]])
    code = enc(x, lms, rot).dense(68).reshape(68, 5)[0]
    dz = float((rot @ x[0])[2])
    assert abs(dz) == pytest.approx(0.05, rel=1e-5)
    want = math.exp(-0.5) * torch.tensor(
        [dz, math.sin(dz), math.cos(dz), math.sin(2 * dz), math.cos(2 * dz)]
    )
    torch.testing.assert_close(code, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dense_fraction", [0.0, 2.0])
@pytest.mark.parametrize("kind", list(ENCODING_KINDS))
def test_sparse_first_layer_equals_dense_matmul_with_gradients(
    kind: str, dense_fraction: float
) -> None:
    torch.manual_seed(3)
    x, lms, rot = _scene(800)
    enc = LandmarkEncoding(kind, dense_fraction=dense_fraction)  # type: ignore[arg-type]
    if kind in ("gaussian", "gaussian_no_depth"):
        with torch.no_grad():  # anisotropic and rotated, so every parameter gets a gradient
            enc.quaternion.copy_(torch.randn(68, 4))
            enc.log_scale.copy_(math.log(0.05) + 0.4 * torch.randn(68, 3))
    layer = ConditionedLinear(32, enc, 64)
    feats = torch.randn(len(x), 32)
    out = layer(feats, enc(x, lms, rot))
    code = enc(x, lms, rot).dense(68)
    w_code = layer.code_weight.reshape(-1, 64)
    ref = feats @ layer.linear.weight.T + layer.linear.bias + code @ w_code
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(out)
    params = [p for p in enc.parameters()]
    if params:
        grads = torch.autograd.grad((out * g).sum(), params)
        grads_ref = torch.autograd.grad((ref * g).sum(), params)
        for a, b in zip(grads, grads_ref):
            assert b.abs().max() > 0
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_reach_and_ellipsoids_bound_the_influence() -> None:
    enc = LandmarkEncoding("gaussian", cutoff=3.5)
    reach = enc.reach()
    assert reach is not None
    torch.testing.assert_close(reach, torch.full((68,), 0.175))
    assert (
        LandmarkEncoding("mlp").reach() is None and LandmarkEncoding("posenc").ellipsoids() is None
    )
    with torch.no_grad():
        enc.quaternion.copy_(torch.randn(68, 4))
        enc.log_scale.copy_(math.log(0.05) + 0.5 * torch.randn(68, 3))
    ell = enc.ellipsoids()
    assert ell is not None
    rot, axes = ell
    lms = torch.randn(68, 3)
    x = lms[5] + 0.3 * torch.randn(4000, 3)
    inside = (((x - lms[5]) @ rot[5]) / axes[5]).norm(dim=-1) < 1  # R^T delta for row vectors
    code = enc(x, lms, torch.eye(3)).dense(68).reshape(len(x), 68, 5)[:, 5]
    nonzero = code.abs().sum(-1) > 0
    assert bool(inside.any()) and bool((~inside).any())
    assert torch.equal(nonzero, inside)  # exactly zero outside the ellipsoid, non-zero inside


def test_spherical_harmonics_are_orthonormal() -> None:
    g = torch.Generator().manual_seed(0)
    d = torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=1, keepdim=True)
    sh = spherical_harmonics(d)
    gram = sh.T @ sh * (4 * math.pi / len(d))
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.02, rtol=0)


def test_trunc_exp_gradient_is_clamped() -> None:
    x = torch.tensor([0.0, 20.0], requires_grad=True)
    y = trunc_exp(x)
    y.sum().backward()
    assert x.grad is not None
    assert x.grad[0].item() == pytest.approx(1.0)
    assert x.grad[1].item() == pytest.approx(math.exp(15.0), rel=1e-5)


def test_row_form_keeps_only_the_landmarks_that_reach_the_points() -> None:
    """Points near a few landmarks (an edit re-renders such points): the row form lists those
    landmarks' column blocks only, and the first layer and the dense code stay exact."""
    _, lms, rot = _scene()
    g = torch.Generator().manual_seed(5)
    few = torch.tensor([3, 17, 40])
    x = lms[few[torch.randint(0, 3, (300,), generator=g)]] + 0.02 * torch.randn(300, 3, generator=g)
    enc = LandmarkEncoding("gaussian", dense_fraction=0.0)
    code = enc(x, lms, rot)
    assert code.matrix is not None and code.columns is not None
    assert set(few.tolist()) <= set(code.columns.tolist()) and len(code.columns) < 20
    assert code.matrix.shape[1] == len(code.columns) * enc.pair_dim
    torch.testing.assert_close(
        code.dense(68), _dense_reference(enc, x, lms, rot), rtol=1e-4, atol=1e-6
    )
    layer = ConditionedLinear(8, enc, 16)
    feats = torch.randn(len(x), 8, generator=g)
    ref = layer.linear(feats) + code.dense(68) @ layer.code_weight.reshape(-1, 16)
    torch.testing.assert_close(layer(feats, code), ref, rtol=1e-5, atol=1e-5)
