"""Fidelity of a rendered frame against the real one, region by region (docs/design.md
"Evaluation"; the ``fidelity`` benchmark and ``talkstudio eval``).

Regions of a frame at side ``S`` (:func:`frame_regions`):

- head: the head bit of the subject's label mask; PSNR is taken over its pixels, SSIM and
  HaarPSI over its bounding box (at least 32 px), where the head's edges and the background
  right around it count;
- mouth: the box of the tracked mouth polygon (points 48–67) plus a margin of
  ``MOUTH_MARGIN`` of its width; its sharpness ratio is the render's mean Laplacian energy over
  the real frame's (:func:`metrics.sharpness_ratio`);
- seam: a band ``SEAM_PX`` wide (at 512²) around the head-mask boundary, where the rendered head
  is blended into the plate; its mean absolute error over the mean absolute error inside the
  head (the head without the band) is the seam ratio: 1 when the blend is as good as the head.
- paste seam: the same ratio for the export in the source video's framing, where the render is
  blended into the real frame with paste-back's weights (core/paste_back.py: the rendered head's
  opacity joined with the frame's head mask, the mask alone for a path that gives no opacity):
  a band ``SEAM_PX`` wide around the line where the weight crosses 0.5, the
  error of the blended frame there over the error inside the head. The real frame stands in for
  the source frame the render is pasted into (for a validation frame they are the same).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import metrics
from .landmarks import MOUTH
from .paste_back import blend_weights
from .subject import MASK_HEAD, Subject

SEAM_PX = 12
"""Width of the seam band, pixels at 512²."""
MOUTH_MARGIN = 0.15
"""Margin around the mouth polygon's box, as a fraction of the mouth width."""
MIN_BOX = 32
"""Smallest side of the head box the image metrics are taken over (MS-GMSD needs 32 px)."""


@dataclass(frozen=True)
class Regions:
    """Boolean masks [S, S] of one frame and the head's bounding box."""

    head: np.ndarray
    mouth: np.ndarray
    seam: np.ndarray
    inner: np.ndarray
    """The head without the seam band."""
    box: tuple[slice, slice]
    """Rows and columns of the head's bounding box (at least MIN_BOX on each side)."""
    paste_weight: np.ndarray | None = None
    """Float [S, S]: paste-back's weight of the render, or None (no paste seam scored)."""
    paste_seam: np.ndarray | None = None
    """The band around the line where ``paste_weight`` crosses 0.5."""


def evenly_spaced(count: int, wanted: int | None) -> list[int]:
    """``wanted`` indices of range(count), evenly spaced (all of them when None or more)."""
    if wanted is None or wanted >= count:
        return list(range(count))
    return sorted(set(np.linspace(0, count - 1, wanted).round().astype(int).tolist()))


def mouth_box(subject: Subject, i: int, size: int) -> np.ndarray:
    """Boolean [size, size]: the box of frame ``i``'s tracked mouth polygon plus the margin."""
    mouth2d = subject.tracks.lm2d[i][list(MOUTH)] * size / subject.meta.size  # [20, 2]
    width = float(np.ptp(mouth2d[:, 0]))
    return metrics.box_mask((size, size), mouth2d, MOUTH_MARGIN * width + 2)


def _span(lo: int, hi: int, n: int) -> slice:
    """[lo, hi) grown about its centre to at least MIN_BOX (or n), kept inside [0, n)."""
    need = min(MIN_BOX, n)
    if hi - lo < need:
        lo = min(max(0, (lo + hi) // 2 - need // 2), n - need)
        hi = lo + need
    return slice(int(lo), int(hi))


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        raise ValueError("the head mask is empty: this frame has no head to score")
    h, w = mask.shape
    return _span(ys.min(), ys.max() + 1, h), _span(xs.min(), xs.max() + 1, w)


def frame_regions(subject: Subject, i: int, size: int, seam_px: int = SEAM_PX) -> Regions:
    """The regions of frame ``i`` at ``size`` × ``size`` (see the module docstring)."""
    import cv2

    labels = subject.load_mask(i)  # [H, W] label bits
    if labels.shape != (size, size):
        labels = cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)
    head = (labels & MASK_HEAD) > 0
    r = max(1, round(seam_px * size / 512) // 2)
    seam, inner = _band(head, r)
    weight = blend_weights(np.zeros((size, size), np.float32), head)
    paste_seam, _ = _band(weight >= 0.5, r)
    return Regions(head, mouth_box(subject, i, size), seam, inner, _box(head), weight, paste_seam)


def _band(mask: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The band of half-width ``r`` around the boundary of ``mask``, and the mask without it."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m8 = mask.astype(np.uint8)
    outer = cv2.dilate(m8, kernel) > 0
    inner = cv2.erode(m8, kernel, borderType=cv2.BORDER_REPLICATE) > 0
    return outer & ~inner, inner


COLUMNS: dict[str, str] = {
    "psnr_head": "head PSNR dB",
    "ssim_head": "head SSIM",
    "haarpsi_head": "head HaarPSI",
    "ms_gmsd_head": "head MS-GMSD",
    "mouth_sharpness": "mouth sharp",
    "psnr_full": "full PSNR dB",
    "seam_ratio": "seam ratio",
    "paste_seam_ratio": "paste seam",
}
"""Keys of :func:`score_frame`'s result and their column titles."""


def score_frame(
    render: np.ndarray, truth: np.ndarray, regions: Regions, opacity: np.ndarray | None = None
) -> dict[str, float]:
    """Every score of :data:`COLUMNS` for one rendered frame against the real one ([S, S, 3]);
    ``opacity`` [S, S] (float in [0, 1] or uint8), the rendered head's, joins paste-back's
    weight as it does in an export (without it the frame's head mask alone makes the weight)."""
    pred, real = metrics.to_float(render), metrics.to_float(truth)
    if opacity is not None and regions.paste_weight is not None:
        weight = blend_weights(opacity, regions.head)
        seam_r = max(1, round(SEAM_PX * weight.shape[0] / 512) // 2)
        regions = replace(regions, paste_weight=weight, paste_seam=_band(weight >= 0.5, seam_r)[0])
    crop_p, crop_r = pred[regions.box], real[regions.box]
    err = np.abs(pred - real).mean(axis=-1)  # [S, S]
    inside = float(err[regions.inner].mean()) if regions.inner.any() else float("nan")
    band = float(err[regions.seam].mean()) if regions.seam.any() else float("nan")
    paste = float("nan")
    if regions.paste_weight is not None and regions.paste_seam is not None:
        w = regions.paste_weight[..., None]
        blended = w * pred + (1.0 - w) * real
        err_b = np.abs(blended - real).mean(axis=-1)
        inside_b = float(err_b[regions.inner].mean()) if regions.inner.any() else float("nan")
        if regions.paste_seam.any() and inside_b > 0:
            paste = float(err_b[regions.paste_seam].mean()) / inside_b
    return {
        "psnr_head": metrics.psnr(pred, real, regions.head),
        "ssim_head": metrics.ssim(crop_p, crop_r),
        "haarpsi_head": metrics.haarpsi(crop_p, crop_r),
        "ms_gmsd_head": metrics.ms_gmsd(crop_p, crop_r),
        "mouth_sharpness": metrics.sharpness_ratio(pred, real, regions.mouth),
        "psnr_full": metrics.psnr(pred, real),
        "seam_ratio": band / inside if inside > 0 else float("nan"),
        "paste_seam_ratio": paste,
    }
