"""Landmark conditioning of the head NeRF (paper Eq. 7, 8a, 8b and the other rows of Table III).

For sample points ``x`` [N, 3] of one frame (head frame, head units), that frame's landmarks
``L`` [K, 3] (head frame) and its head-to-camera rotation ``R_cam`` [3, 3], the per-point kinds
compute for every (point, landmark) pair the offset ``delta = x - L_k`` and

- ``"gaussian"`` (Eq. 8a/8b): ``w = exp(-1/2 delta Sigma_k^-1 delta^T)`` with a learnable
  ``Sigma_k = R_k S_k (R_k S_k)^T`` (unit quaternion + log-scale per landmark, scale 0.05 and
  identity rotation at the start), times ``gamma(d_z) = [d_z, sin d_z, cos d_z, sin 2d_z,
  cos 2d_z]`` where ``d = R_cam delta`` is the offset in the frame's camera coordinates:
  68 x 5 = 340 values per point;
- ``"gaussian_no_depth"``: Eq. 8a without ``gamma(d_z)``: ``w`` alone, 68 values;
- ``"keypoint"`` (Eq. 7, KeypointNeRF): ``exp(-|d|^2 / (2 alpha^2)) gamma(d_z)``, fixed
  ``alpha = 0.05``;

and two per-frame kinds code the flattened landmarks once per frame:

- ``"posenc"``: ``gamma(.)`` of the flattened landmarks (NeRF frequencies);
- ``"mlp"``: Linear-ReLU-Linear of the flattened landmarks (GeneFace++-style).

Sigma is kept in the head frame, so each Gaussian stays attached to its landmark when the head
turns; the Mahalanobis distance is the same in any rotated frame when Sigma is rotated with it,
and only ``d_z`` needs the camera. The Gaussian weight is truncated at a Mahalanobis distance of
``cutoff`` (weight ``exp(-cutoff^2 / 2)``, 0.2 % at 3.5): outside that ellipsoid a landmark
contributes exactly zero. Pairs are only formed inside the ellipsoid's bounding sphere
(:meth:`LandmarkEncoding.reach`), so the code is a short list of (point, landmark, value) pairs;
the edit-aware re-render intersects rays with the ellipsoids (:meth:`LandmarkEncoding.ellipsoids`)
to find the rays an edit can change.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

EncodingKind = Literal["gaussian", "gaussian_no_depth", "keypoint", "posenc", "mlp"]
ENCODING_KINDS: tuple[EncodingKind, ...] = (
    "posenc",
    "mlp",
    "keypoint",
    "gaussian_no_depth",
    "gaussian",
)
"""The five rows of the paper's Table III, in its order."""


@dataclass
class LandmarkCode:
    """The landmark condition of N sample points, in one of three forms.

    Per-frame kinds fill ``frame`` [C]: one vector shared by every point. Per-point kinds fill
    either the pair list sorted by landmark — ``point_idx`` [P], ``values`` [P, D] and ``counts``
    (pairs per landmark, [K] as a list) — when few landmarks reach each point, or ``rows`` [n]
    and ``matrix`` [n, U * D], the code of the points that any landmark reaches restricted to the
    U landmarks ``columns`` [U] that reach any of them, when many do. Points and landmarks not
    listed have an all-zero code.
    """

    num_points: int
    frame: torch.Tensor | None = None
    point_idx: torch.Tensor | None = None
    values: torch.Tensor | None = None
    counts: list[int] | None = None
    rows: torch.Tensor | None = None
    matrix: torch.Tensor | None = None
    columns: torch.Tensor | None = None
    sparse: torch.Tensor | None = None
    """The whole code as a sparse CSR matrix [N, K * D] (the fast inference form, CPU)."""

    def dense(self, num_landmarks: int) -> torch.Tensor:
        """The code as a dense [N, C] matrix (for tests and small inputs)."""
        if self.frame is not None:
            return self.frame.expand(self.num_points, -1)
        if self.sparse is not None:
            return self.sparse.to_dense()
        if self.matrix is not None and self.rows is not None and self.columns is not None:
            u = len(self.columns)
            out = self.matrix.new_zeros(self.num_points, num_landmarks, self.matrix.shape[1] // u)
            out[self.rows[:, None], self.columns[None, :]] = self.matrix.reshape(
                len(self.rows), u, -1
            )
            return out.reshape(self.num_points, -1)
        assert self.values is not None and self.point_idx is not None and self.counts is not None
        d = self.values.shape[1]
        out = self.values.new_zeros(self.num_points, num_landmarks, d)
        lm = torch.repeat_interleave(
            torch.arange(num_landmarks, device=self.values.device),
            torch.tensor(self.counts, device=self.values.device),
        )
        out[self.point_idx, lm] = self.values
        return out.reshape(self.num_points, -1)


def depth_embedding(dz: torch.Tensor) -> torch.Tensor:
    """gamma(d_z) = [d_z, sin d_z, cos d_z, sin 2d_z, cos 2d_z] of ``dz`` [P] -> [P, 5]."""
    sin, cos = dz.sin(), dz.cos()
    return torch.stack([dz, sin, cos, 2 * sin * cos, 1 - 2 * sin * sin], dim=-1)


def quaternion_to_rotation(q: torch.Tensor) -> torch.Tensor:
    """Rotations [..., 3, 3] of quaternions ``q`` [..., 4] (w, x, y, z; normalised here)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def positional_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """NeRF's gamma(x) = [x, sin(2^i pi x), cos(2^i pi x)]_{i<F} of ``x`` [..., C] -> [..., C(2F+1)]."""
    parts = [x]
    for i in range(frequencies):
        parts += [torch.sin((2.0**i) * math.pi * x), torch.cos((2.0**i) * math.pi * x)]
    return torch.cat(parts, dim=-1)


class LandmarkEncoding(nn.Module):
    """One of the five landmark encodings of Table III (see the module docstring).

    ``dense_fraction``: when more than this fraction of (point, landmark) pairs of a batch lie
    within reach, the code is computed as full rows instead of a pair list (same values, faster
    once the learnt Gaussians have grown).
    """

    fixed_scale: torch.Tensor

    def __init__(
        self,
        kind: EncodingKind = "gaussian",
        num_landmarks: int = 68,
        scale_init: float = 0.05,
        cutoff: float = 3.5,
        posenc_frequencies: int = 4,
        mlp_width: int = 64,
        dense_fraction: float = 0.06,
    ) -> None:
        super().__init__()
        if kind not in ENCODING_KINDS:
            raise ValueError(f"unknown landmark encoding {kind!r}; choose one of {ENCODING_KINDS}")
        self.kind: EncodingKind = kind
        self.num_landmarks = num_landmarks
        self.cutoff = cutoff
        self.dense_fraction = dense_fraction
        self.posenc_frequencies = posenc_frequencies
        self.mlp_width = mlp_width
        k = num_landmarks
        if kind in ("gaussian", "gaussian_no_depth"):
            quat = torch.zeros(k, 4)
            quat[:, 0] = 1.0
            self.quaternion = nn.Parameter(quat)  # [K, 4] identity rotation
            self.log_scale = nn.Parameter(torch.full((k, 3), math.log(scale_init)))  # [K, 3]
        else:
            self.register_buffer("fixed_scale", torch.full((k,), float(scale_init)))
        if kind == "mlp":
            self.mlp = nn.Sequential(
                nn.Linear(3 * k, mlp_width), nn.ReLU(), nn.Linear(mlp_width, mlp_width)
            )

    @property
    def per_point(self) -> bool:
        """Whether the code differs between the sample points of one frame."""
        return self.kind not in ("posenc", "mlp")

    @property
    def pair_dim(self) -> int:
        """Values per (point, landmark) pair D (per-point kinds)."""
        return 1 if self.kind == "gaussian_no_depth" else 5

    @property
    def out_dim(self) -> int:
        """Width C of the dense code: K * D for per-point kinds, the frame vector otherwise."""
        if self.kind == "posenc":
            return 3 * self.num_landmarks * (2 * self.posenc_frequencies + 1)
        if self.kind == "mlp":
            return self.mlp_width
        return self.num_landmarks * self.pair_dim

    def scales(self) -> torch.Tensor:
        """Standard deviations along each Gaussian's axes [K, 3]."""
        if self.kind in ("gaussian", "gaussian_no_depth"):
            return self.log_scale.exp()
        return self.fixed_scale[:, None].expand(-1, 3)

    def reach(self) -> torch.Tensor | None:
        """Radius [K] beyond which landmark k contributes exactly zero; None: it reaches all."""
        if not self.per_point:
            return None
        return self.cutoff * self.scales().detach().amax(dim=1)

    def ellipsoids(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Support of each truncated Gaussian: rotations R [K, 3, 3] and semi-axes [K, 3]
        (``cutoff`` standard deviations); a point x is inside iff ``|(R^T (x - L_k)) / axes| < 1``.
        None for the per-frame kinds."""
        if not self.per_point:
            return None
        return self._rotations().detach(), self.cutoff * self.scales().detach()

    def covariance(self) -> torch.Tensor:
        """Sigma = R S (R S)^T [K, 3, 3] (Eq. 8b)."""
        rs = self._rotations() * self.scales()[:, None, :]
        return rs @ rs.transpose(-1, -2)

    def _rotations(self) -> torch.Tensor:
        if self.kind in ("gaussian", "gaussian_no_depth"):
            return quaternion_to_rotation(self.quaternion)
        eye = torch.eye(3, device=self.fixed_scale.device)
        return eye.expand(self.num_landmarks, 3, 3)

    def forward(
        self,
        x: torch.Tensor,
        landmarks: torch.Tensor,
        cam_rotation: torch.Tensor,
        sparse: bool = False,
        only: torch.Tensor | None = None,
    ) -> LandmarkCode:
        """Code of points ``x`` [N, 3] given ``landmarks`` [K, 3] and ``cam_rotation`` [3, 3].

        ``sparse``: per-point codes come as one CSR matrix (:attr:`LandmarkCode.sparse`; for
        inference on the CPU: no gradient reaches the landmark parameters through it).
        ``only`` [K] bool (per-point kinds): the part of the code that those landmarks give, the
        others' columns left zero; the code is the sum of its parts over a split of the
        landmarks."""
        n = x.shape[0]
        if self.kind == "posenc":
            flat = landmarks.reshape(-1).float()
            return LandmarkCode(n, frame=positional_encoding(flat, self.posenc_frequencies))
        if self.kind == "mlp":
            return LandmarkCode(n, frame=self.mlp(landmarks.reshape(-1).float()))
        return self._pairs(x.float(), landmarks.float(), cam_rotation.float(), sparse, only)

    def _pairs(
        self,
        x: torch.Tensor,
        lms: torch.Tensor,
        rot_cam: torch.Tensor,
        sparse: bool = False,
        only: torch.Tensor | None = None,
    ) -> LandmarkCode:
        """Eq. 7 / 8a for the (point, landmark) pairs inside the truncation ellipsoids.

        The squared Mahalanobis distances of all candidate pairs come from one matrix product:
        ``delta^T A delta`` with ``A = Sigma^-1`` expands into a quadratic form in x, i.e. 10
        monomials of x times 10 coefficients per landmark (coordinates centred on the landmarks'
        mean, in float64, to keep the expansion precise). Only pairs inside the cutoff get values.
        """
        k = self.num_landmarks
        reach = self.reach()
        assert reach is not None
        xd, ld = x.detach(), lms.detach()
        lo = (ld - reach[:, None]).amin(0)
        hi = (ld + reach[:, None]).amax(0)
        cand = ((xd > lo) & (xd < hi)).all(dim=1).nonzero(as_tuple=True)[0]  # [n]
        near = _near_landmarks(ld, reach, xd[cand], only)  # [U] ascending
        centre = ld.mean(0)
        coeffs = self._quadratic((lms - centre).double())[near]  # [U, 10], float64: the
        m2 = (_monomials((x[cand] - centre).double()) @ coeffs.T).float()  # expansion cancels
        inside = m2.detach() < self.cutoff**2  # terms [n, U]
        pt, col = inside.nonzero(as_tuple=True)  # sorted by point, then landmark
        lm_idx = near[col]
        dz = (x[cand] @ rot_cam[2])[pt] - (lms @ rot_cam[2])[lm_idx]  # [P] z of R_cam delta
        values = self._values(dz, m2[pt, col])  # [P, D]
        if sparse:
            return LandmarkCode(x.shape[0], sparse=self._csr(x.shape[0], cand[pt], lm_idx, values))
        if len(pt) > self.dense_fraction * inside.numel():
            # Rows of the points and column blocks of the landmarks that have pairs only: an
            # edit re-renders points near a few landmarks, and zero rows cost time to fill.
            hit_rows = torch.unique_consecutive(pt)  # pt is sorted
            present = torch.bincount(lm_idx, minlength=k) > 0  # O(P), no sort
            columns = present.nonzero(as_tuple=True)[0]
            col_of = torch.cumsum(present, 0) - 1  # column block of each present landmark
            row_of = torch.full((len(cand),), -1, dtype=torch.long, device=pt.device)
            row_of[hit_rows] = torch.arange(len(hit_rows), device=pt.device)
            flat = values.new_zeros(len(hit_rows) * len(columns), self.pair_dim)
            at = row_of[pt] * len(columns) + col_of[lm_idx]
            matrix = flat.index_copy(0, at, values).reshape(len(hit_rows), -1)
            return LandmarkCode(x.shape[0], rows=cand[hit_rows], matrix=matrix, columns=columns)
        order = torch.argsort(lm_idx, stable=True)
        counts = torch.bincount(lm_idx, minlength=k).tolist()
        return LandmarkCode(
            x.shape[0], point_idx=cand[pt[order]], values=values[order], counts=counts
        )

    def _csr(
        self, n: int, point: torch.Tensor, landmark: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """CSR [n, K * D] of pairs (``point`` [P] ascending, ``landmark`` [P] ascending within a
        point, ``values`` [P, D]); the values are detached."""
        d = self.pair_dim
        crow = torch.zeros(n + 1, dtype=torch.long, device=values.device)
        crow[1:] = torch.cumsum(torch.bincount(point, minlength=n), 0) * d
        col = (landmark[:, None] * d + torch.arange(d, device=values.device)).reshape(-1)
        with warnings.catch_warnings():  # torch calls its CSR tensors a beta feature
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                crow,
                col,
                values.detach().reshape(-1),
                size=(n, self.num_landmarks * d),
                check_invariants=False,
            )

    def _quadratic(self, lms: torch.Tensor) -> torch.Tensor:
        """Coefficients [K, 10] of ``(x - L_k)^T Sigma_k^-1 (x - L_k)`` on :func:`_monomials`."""
        rot = self._rotations().to(lms.dtype)
        inv = rot * (1.0 / self.scales().to(lms.dtype).square())[:, None, :]  # R S^-2
        a = inv @ rot.transpose(-1, -2)  # Sigma^-1 [K, 3, 3]
        b = -2.0 * (a @ lms[:, :, None])[..., 0]  # [K, 3]
        c = (lms[:, None, :] @ a @ lms[:, :, None])[:, 0, 0]  # [K]
        cols = [a[:, 0, 0], a[:, 1, 1], a[:, 2, 2], 2 * a[:, 0, 1], 2 * a[:, 0, 2], 2 * a[:, 1, 2]]
        return torch.stack([*cols, b[:, 0], b[:, 1], b[:, 2], c], dim=-1)

    def _values(self, dz: torch.Tensor, m2: torch.Tensor) -> torch.Tensor:
        """Truncated Gaussian weight, times gamma(d_z) except for gaussian_no_depth, [P, D]."""
        w = torch.where(m2 < self.cutoff**2, torch.exp(-0.5 * m2), torch.zeros_like(m2))
        if self.kind == "gaussian_no_depth":
            return w[:, None]
        return w[:, None] * depth_embedding(dz)


def _near_landmarks(
    lms: torch.Tensor, reach: torch.Tensor, x: torch.Tensor, only: torch.Tensor | None = None
) -> torch.Tensor:
    """Indices [U] (ascending) of the landmarks ``lms`` [K, 3] (of those marked in ``only``
    [K] bool, when given) whose reach [K] meets the box around points ``x`` [n, 3]: only they
    can have pairs with those points. An edit re-renders points near the few moved landmarks,
    and the others' columns would cost time to rule out."""
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long, device=lms.device)
    lo, hi = x.amin(0), x.amax(0)
    gap = (lo - lms).clamp_min(0) + (lms - hi).clamp_min(0)  # [K, 3] to the box, per axis
    near = gap.norm(dim=1) <= reach
    if only is not None:
        near &= only
    return near.nonzero(as_tuple=True)[0]


def _monomials(x: torch.Tensor) -> torch.Tensor:
    """[x^2, y^2, z^2, xy, xz, yz, x, y, z, 1] of points [n, 3] -> [n, 10]."""
    a, b, c = x.unbind(-1)
    return torch.stack([a * a, b * b, c * c, a * b, a * c, b * c, a, b, c, torch.ones_like(a)], -1)
