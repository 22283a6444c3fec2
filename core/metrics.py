"""Image and landmark metrics shared by every stage and by ``eval`` (docs/design.md "Evaluation").

Images are float arrays in [0, 1] of shape [H, W, 3] (or [N, H, W, 3]); masks are boolean
[H, W] (or [N, H, W]). PSNR is in dB; LMD in pixels. The perceptual metrics (HaarPSI, MS-GMSD)
come from ``piq`` and need no downloaded weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 images to float64 in [0, 1]; float images are returned as float64."""
    arr = np.asarray(img)
    return arr.astype(np.float64) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)


def mse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over all pixels and channels, or inside ``mask`` only."""
    err = (to_float(pred) - to_float(target)) ** 2  # [..., H, W, C]
    if mask is None:
        return float(err.mean())
    m = np.broadcast_to(np.asarray(mask, bool)[..., None], err.shape)
    if not m.any():
        raise ValueError("the mask selects no pixels")
    return float(err[m].mean())


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB (peak 1.0), optionally inside ``mask``."""
    return float(10.0 * np.log10(1.0 / max(mse(pred, target, mask), 1e-12)))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity of two RGB images [H, W, 3] (Gaussian window σ = 1.5, 11 taps)."""
    import cv2

    a, b = to_float(pred), to_float(target)
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def box_mask(shape: tuple[int, int], points: np.ndarray, margin: float) -> np.ndarray:
    """Boolean [H, W] mask of the bounding box of ``points`` [N, 2] (u, v) grown by ``margin`` px."""
    h, w = shape
    lo = np.floor(points.min(axis=0) - margin).astype(int)
    hi = np.ceil(points.max(axis=0) + margin).astype(int)
    m = np.zeros((h, w), bool)
    m[max(lo[1], 0) : min(hi[1], h), max(lo[0], 0) : min(hi[0], w)] = True
    return m


def landmark_distance(pred: np.ndarray, target: np.ndarray, centre: bool = True) -> float:
    """Mean 2D distance [px] between ``pred`` and ``target`` [T, N, 2], each centred on its own
    per-frame mean when ``centre`` (docs/design.md "Evaluation": LMD)."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    if centre:
        p = p - p.mean(axis=-2, keepdims=True)
        t = t - t.mean(axis=-2, keepdims=True)
    return float(np.linalg.norm(p - t, axis=-1).mean())


def _nchw(img: np.ndarray) -> torch.Tensor:
    """[H, W, 3] image (uint8 or float) → float32 tensor [1, 3, H, W] clipped to [0, 1]."""
    import torch

    arr = np.clip(to_float(img), 0.0, 1.0).astype(np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)[None]


def _check_pair(pred: np.ndarray, target: np.ndarray, least: int, metric: str) -> None:
    if np.shape(pred) != np.shape(target):
        raise ValueError(
            f"{metric}: images differ in shape, {np.shape(pred)} vs {np.shape(target)}"
        )
    if min(np.shape(pred)[:2]) < least:
        raise ValueError(
            f"{metric} needs images of at least {least}×{least} px, got {np.shape(pred)[:2]}: "
            "score a larger region"
        )


def haarpsi(pred: np.ndarray, target: np.ndarray) -> float:
    """HaarPSI (Reisenhofer et al. 2018) of two RGB images [H, W, 3], from ``piq``: a perceptual
    similarity in [0, 1] built from Haar wavelet responses (1 for identical images); it needs
    no learnt weights. Images must be at least 16 px on each side."""
    import piq
    import torch

    _check_pair(pred, target, 16, "HaarPSI")
    with torch.no_grad():
        return float(piq.haarpsi(_nchw(pred), _nchw(target), data_range=1.0))


def ms_gmsd(pred: np.ndarray, target: np.ndarray) -> float:
    """Multi-scale gradient magnitude similarity deviation (``piq``) of two RGB images
    [H, W, 3]: 0 for identical images, larger when edges differ; no learnt weights. Images
    must be at least 32 px on each side (four scales)."""
    import piq
    import torch

    _check_pair(pred, target, 32, "MS-GMSD")
    with torch.no_grad():
        x, y = _nchw(pred), _nchw(target)
        return float(piq.multi_scale_gmsd(x, y, data_range=1.0, chromatic=True))


def laplacian_energy(img: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean high-frequency energy of an RGB image [H, W, 3]: the mean squared response of the
    3×3 Laplacian on its grey level (in [0, 1] units), over ``mask`` [H, W] when given."""
    import cv2

    grey = to_float(img).mean(axis=-1)  # [H, W]
    lap = cv2.Laplacian(grey, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT) ** 2
    if mask is None:
        return float(lap.mean())
    m = np.asarray(mask, bool)
    if not m.any():
        raise ValueError("the mask selects no pixels")
    return float(lap[m].mean())


def sharpness_ratio(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """High-frequency energy of ``pred`` over that of ``target`` (:func:`laplacian_energy`),
    inside ``mask``: below 1 the render is blurrier than the real frame, above 1 sharper (or
    noisier). NaN when the real frame has no detail there."""
    real = laplacian_energy(target, mask)
    return laplacian_energy(pred, mask) / real if real > 0 else float("nan")
