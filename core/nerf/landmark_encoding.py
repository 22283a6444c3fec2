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
and only ``d_z`` needs the camera. The Gaussian weight is truncated at ``cutoff`` standard
deviations along the Gaussian's widest axis (``exp(-cutoff^2 / 2)``, 0.2 % at 3.5): pairs farther
apart than that contribute exactly zero and are never formed, so the code is a short list of
(point, landmark, value) pairs. :meth:`LandmarkEncoding.reach` gives each landmark's radius of
influence; the edit-aware re-render uses it to find the rays an edit can change.
"""

from __future__ import annotations

import math
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
    """The landmark condition of N sample points, in one of two forms.

    Per-frame kinds fill ``frame`` [C]: one vector shared by every point. Per-point kinds fill
    the pair list sorted by landmark: ``point_idx`` [P], ``values`` [P, D] and ``counts`` (pairs
    per landmark, [K] as a list); the dense code of point n would be the [K * D] vector with
    ``values`` at the rows of its pairs and zeros elsewhere.
    """

    num_points: int
    frame: torch.Tensor | None = None
    point_idx: torch.Tensor | None = None
    values: torch.Tensor | None = None
    counts: list[int] | None = None

    def dense(self, num_landmarks: int) -> torch.Tensor:
        """The code as a dense [N, C] matrix (for tests and small inputs)."""
        if self.frame is not None:
            return self.frame.expand(self.num_points, -1)
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
    return torch.stack([dz, dz.sin(), dz.cos(), (2 * dz).sin(), (2 * dz).cos()], dim=-1)


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
    """One of the five landmark encodings of Table III (see the module docstring)."""

    fixed_scale: torch.Tensor

    def __init__(
        self,
        kind: EncodingKind = "gaussian",
        num_landmarks: int = 68,
        scale_init: float = 0.05,
        cutoff: float = 3.5,
        posenc_frequencies: int = 4,
        mlp_width: int = 64,
    ) -> None:
        super().__init__()
        if kind not in ENCODING_KINDS:
            raise ValueError(f"unknown landmark encoding {kind!r}; choose one of {ENCODING_KINDS}")
        self.kind: EncodingKind = kind
        self.num_landmarks = num_landmarks
        self.cutoff = cutoff
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
        self, x: torch.Tensor, landmarks: torch.Tensor, cam_rotation: torch.Tensor
    ) -> LandmarkCode:
        """Code of points ``x`` [N, 3] given ``landmarks`` [K, 3] and ``cam_rotation`` [3, 3]."""
        n = x.shape[0]
        if self.kind == "posenc":
            flat = landmarks.reshape(-1).float()
            return LandmarkCode(n, frame=positional_encoding(flat, self.posenc_frequencies))
        if self.kind == "mlp":
            return LandmarkCode(n, frame=self.mlp(landmarks.reshape(-1).float()))
        return self._pairs(x.float(), landmarks.float(), cam_rotation.float())

    def _pairs(self, x: torch.Tensor, lms: torch.Tensor, rot_cam: torch.Tensor) -> LandmarkCode:
        """Eq. 7 / 8a over the (point, landmark) pairs inside the cutoff."""
        k = self.num_landmarks
        reach = self.reach()
        assert reach is not None
        point_idx, lm_idx = _pairs_within(x.detach(), lms.detach(), reach)
        delta = x[point_idx] - lms[lm_idx]  # [P, 3]
        scales = self.scales()
        if self.kind == "keypoint":  # Eq. 7: isotropic, fixed alpha
            m2 = (delta * delta).sum(-1) / scales[lm_idx, 0].square()
        else:  # Eq. 8a: delta Sigma^-1 delta^T = |S^-1 R^T delta|^2
            local = (delta[:, :, None] * self._rotations()[lm_idx]).sum(1)  # [P, 3] = R^T delta
            m2 = (local / scales[lm_idx]).square().sum(-1)
        w = torch.exp(-0.5 * m2)  # [P]
        if self.kind == "gaussian_no_depth":
            values = w[:, None]
        else:
            dz = delta @ rot_cam[2]  # [P] depth component of R_cam delta
            values = w[:, None] * depth_embedding(dz)
        counts = torch.bincount(lm_idx, minlength=k).tolist()
        return LandmarkCode(x.shape[0], point_idx=point_idx, values=values, counts=counts)


def _pairs_within(
    x: torch.Tensor, lms: torch.Tensor, radius: torch.Tensor, chunk: int = 65536
) -> tuple[torch.Tensor, torch.Tensor]:
    """(point, landmark) index pairs [P], [P] with ``|x_n - L_k| < radius_k``, sorted by landmark.

    Points outside the box around all landmark spheres are dropped first; distances are computed
    directly (not through a matrix product) so a point's pairs do not depend on its batch.
    """
    lo = (lms - radius[:, None]).amin(0)
    hi = (lms + radius[:, None]).amax(0)
    cand = ((x > lo) & (x < hi)).all(dim=1).nonzero(as_tuple=True)[0]  # [n]
    r2 = radius.square()
    points, marks = [], []
    for part in cand.split(chunk):
        d2 = torch.cdist(x[part], lms, compute_mode="donot_use_mm_for_euclid_dist").square()
        lm, pt = (d2 < r2).T.nonzero(as_tuple=True)  # sorted by landmark
        points.append(part[pt])
        marks.append(lm)
    if not points:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return empty, empty
    pt, lm = torch.cat(points), torch.cat(marks)
    if len(points) > 1:
        order = torch.argsort(lm, stable=True)
        pt, lm = pt[order], lm[order]
    return pt, lm
