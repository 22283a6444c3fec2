"""Camera rays of a frame in the head frame (the NeRF's world), see :mod:`talkstudio.core.geometry`.

A frame's ``pose`` is head-to-camera (``X_cam = R X_head + t``); the camera sits at
``-R^T t`` in the head frame and looks along ``R^T [(u - cx) / fx, (v - cy) / fy, 1]`` for the
pixel point ``(u, v)`` (pixel centres at ``col + 0.5``, OpenCV camera).
"""

from __future__ import annotations

import numpy as np
import torch


def pixel_centers(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(u, v) of every pixel centre of a ``size`` x ``size`` image, row-major [size * size, 2]."""
    c = torch.arange(size, dtype=torch.float32, device=device) + 0.5
    v, u = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def camera_rays(
    K: np.ndarray | torch.Tensor,
    pose: np.ndarray | torch.Tensor,
    uv: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins [N, 3] and unit directions [N, 3] in the head frame of pixel points ``uv`` [N, 2].

    ``K`` [3, 3] must be at the resolution ``uv`` is measured in; ``pose`` [4, 4] is head-to-camera.
    """
    dev = uv.device
    K = torch.as_tensor(K, dtype=torch.float32, device=dev)
    pose = torch.as_tensor(pose, dtype=torch.float32, device=dev)
    rot, trans = pose[:3, :3], pose[:3, 3]
    x = (uv[:, 0] - K[0, 2]) / K[0, 0]
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # [N, 3]
    dirs = d_cam @ rot  # R^T d for row vectors
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origin = -(rot.T @ trans)
    return origin.expand_as(dirs).contiguous(), dirs


def ray_box(
    origins: torch.Tensor, dirs: torch.Tensor, bbox: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances [N], [N] of rays through the box ``bbox`` [2, 3] (slab method).

    Rays that miss the box get ``near == far``; ``near`` is never negative.
    """
    safe = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (bbox[0] - origins) / safe
    t1 = (bbox[1] - origins) / safe
    near = torch.minimum(t0, t1).amax(dim=-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(dim=-1)
    far = torch.maximum(far, near)
    return near, far
