"""The head radiance field F(L_world, x, d) = (c, sigma) of paper Eq. 6.

Positions are encoded by the hash grid over the head's bounding box; the landmark code of
:mod:`.landmark_encoding` joins them in the first layer of the density MLP, which outputs the
density and a geometry feature; the colour MLP takes that feature and degree-4 spherical
harmonics of the view direction (RAD-NeRF's layout, as in the authors' code). Both MLPs are
64 wide with two hidden layers.

The per-point landmark code is sparse (a few landmarks per point, none for most points), so the
first layer adds ``values @ W_k`` for each (point, landmark) pair instead of multiplying a mostly
zero [N, 340] matrix: :class:`ConditionedLinear`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .encoding import HashGridConfig, make_hash_grid
from .landmark_encoding import LandmarkCode, LandmarkEncoding


class _TruncExp(torch.autograd.Function):
    """exp(x) whose gradient uses exp(clamp(x, max=15)) (Instant-NGP's density activation)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15.0))


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = _TruncExp.apply(x)
    return out


def spherical_harmonics(d: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics up to degree 3 (16 values, "degree 4") of unit ``d`` [N, 3]."""
    x, y, z = d.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    return torch.stack(
        [
            torch.full_like(x, 0.28209479177387814),
            -0.48860251190291987 * y,
            0.48860251190291987 * z,
            -0.48860251190291987 * x,
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (2 * zz - xx - yy),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
            -0.5900435899266435 * y * (3 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (4 * zz - xx - yy),
            0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
            -0.4570457994644658 * x * (4 * zz - xx - yy),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3 * yy),
        ],
        dim=-1,
    )


class ConditionedLinear(nn.Module):
    """First density layer on [features, landmark code]: ``W_f f + W_c c + b`` -> [N, out].

    ``W_c`` is stored per landmark ([K, D, out]) for per-point codes, so a sparse code costs one
    small matrix product per landmark over that landmark's pairs.
    """

    def __init__(self, in_features: int, encoding: LandmarkEncoding, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        fan_in = in_features + encoding.out_dim
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.linear.weight, -bound, bound)
        nn.init.uniform_(self.linear.bias, -bound, bound)
        if encoding.per_point:
            shape: tuple[int, ...] = (encoding.num_landmarks, encoding.pair_dim, out_features)
        else:
            shape = (encoding.out_dim, out_features)
        self.code_weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

    def forward(self, feats: torch.Tensor, code: LandmarkCode) -> torch.Tensor:
        return self.add_code(self.linear(feats), code)  # [N, H]

    def add_code(self, out: torch.Tensor, code: LandmarkCode) -> torch.Tensor:
        """``out`` [N, H] plus the code's term ``W_c c``."""
        if code.sparse is not None:
            weight = self.code_weight.reshape(-1, out.shape[1]).to(out.dtype)  # [K * D, H]
            return torch.addmm(out, code.sparse.to(out.dtype), weight)
        if code.frame is not None:
            return out + (code.frame.to(out.dtype) @ self.code_weight.to(out.dtype))
        if code.matrix is not None and code.rows is not None and code.columns is not None:
            w = self.code_weight[code.columns]  # [U, D, H]
            w = w.reshape(-1, w.shape[-1]).to(out.dtype)
            return out.index_add(0, code.rows, (code.matrix.to(out.dtype) @ w).to(out.dtype))
        assert code.values is not None and code.point_idx is not None and code.counts is not None
        if code.values.shape[0] == 0:
            return out
        parts = []
        for k, vals in enumerate(code.values.split(code.counts)):
            if vals.shape[0]:
                parts.append(vals.to(out.dtype) @ self.code_weight[k].to(out.dtype))
        return out.index_add(0, code.point_idx, torch.cat(parts).to(out.dtype))


class HeadField(nn.Module):
    """Hash grid + landmark encoding + density and colour MLPs over the head box."""

    bbox: torch.Tensor

    def __init__(
        self,
        bbox: torch.Tensor,
        grid: HashGridConfig,
        encoding: LandmarkEncoding,
        width: int = 64,
        geo_features: int = 15,
        device: torch.device | str = "cpu",
        density_bias: float = 0.0,
    ) -> None:
        super().__init__()
        self.register_buffer(
            "bbox", torch.as_tensor(bbox, dtype=torch.float32).reshape(2, 3).clone()
        )
        self.grid = make_hash_grid(grid, device)
        self.encoding = encoding
        self.geo_features = geo_features
        self.sigma_in = ConditionedLinear(grid.layout.out_dim, encoding, width)
        out = nn.Linear(width, 1 + geo_features)
        with torch.no_grad():
            out.bias[0] = density_bias  # initial log-density
        self.sigma_net = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), out)
        self.color_net = nn.Sequential(
            nn.Linear(geo_features + 16, width),
            nn.ReLU(),
            nn.Linear(width, width),
            nn.ReLU(),
            nn.Linear(width, 3),
        )
        self.to(device)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Head-frame points [N, 3] -> [0, 1]^3 over the bounding box."""
        lo, hi = self.bbox[0], self.bbox[1]
        return (x - lo) / (hi - lo)

    def position_features(self, x: torch.Tensor) -> torch.Tensor:
        """Hash features [N, L * F] of head-frame points ``x`` [N, 3] (landmark-free: cacheable)."""
        return self.grid(self.normalize(x).float())

    def density(
        self,
        x: torch.Tensor,
        feats: torch.Tensor,
        landmarks: torch.Tensor,
        cam_rotation: torch.Tensor,
        fast: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Density sigma [N] and geometry feature [N, G] at ``x`` [N, 3] with hash ``feats``.

        ``fast`` (inference): on the CPU the landmark code enters the first layer as one sparse
        matrix product (:attr:`~.landmark_encoding.LandmarkCode.sparse`)."""
        code = self.encoding(x, landmarks, cam_rotation, sparse=fast and x.device.type == "cpu")
        return self.density_after(self.sigma_in(feats, code))

    def first_layer(
        self,
        x: torch.Tensor,
        landmarks: torch.Tensor,
        cam_rotation: torch.Tensor,
        only: torch.Tensor,
        feats: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A part [N, H] of the first density layer at ``x`` [N, 3]: the code term of the
        landmarks marked in ``only`` [K] bool, plus the hash-feature term when ``feats`` is
        given. The parts over a split of the landmarks add up to the whole layer (per-point
        encodings only), so an edit that moves some landmarks can keep the rest's part."""
        code = self.encoding(x, landmarks, cam_rotation, only=only)
        if feats is None:
            out = x.new_zeros(x.shape[0], self.sigma_in.linear.out_features)
        else:
            out = self.sigma_in.linear(feats)
        return self.sigma_in.add_code(out, code)

    def density_after(self, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density sigma [N] and geometry feature [N, G] from the whole first layer [N, H]."""
        h = self.sigma_net(first)
        return trunc_exp(h[:, 0].float()), h[:, 1:]

    def color(self, geo: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
        """RGB [N, 3] in [0, 1] from geometry features [N, G] and unit view directions [N, 3]."""
        sh = spherical_harmonics(dirs).to(geo.dtype)
        return torch.sigmoid(self.color_net(torch.cat([geo, sh], dim=-1)).float())

    def forward(
        self,
        x: torch.Tensor,
        dirs: torch.Tensor,
        landmarks: torch.Tensor,
        cam_rotation: torch.Tensor,
        feats: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 6: (sigma [N], rgb [N, 3]) at points ``x`` [N, 3] seen along ``dirs`` [N, 3]."""
        if feats is None:
            feats = self.position_features(x)
        sigma, geo = self.density(x, feats, landmarks, cam_rotation)
        return sigma, self.color(geo, dirs)
