"""Shared metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from talkstudio.core import metrics


def test_psnr_known_values() -> None:
    a = np.zeros((8, 8, 3))
    b = np.full((8, 8, 3), 0.1)
    assert metrics.psnr(a, b) == pytest.approx(20.0)
    mask = np.zeros((8, 8), bool)
    mask[:2] = True
    b2 = b.copy()
    b2[2:] = 0.5  # outside the mask: ignored
    assert metrics.psnr(a, b2, mask) == pytest.approx(20.0)
    assert metrics.psnr(
        np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    ) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no pixels"):
        metrics.psnr(a, b, np.zeros((8, 8), bool))


def test_ssim() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((32, 32, 3))
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1)
    assert metrics.ssim(img, noisy) < 0.9


def test_lmd_centres_each_set() -> None:
    t = np.random.default_rng(1).random((5, 20, 2)) * 100
    assert metrics.landmark_distance(t + 7.0, t) == pytest.approx(0.0, abs=1e-9)
    assert metrics.landmark_distance(t + 7.0, t, centre=False) == pytest.approx(7.0 * np.sqrt(2))


def test_box_mask() -> None:
    m = metrics.box_mask((10, 10), np.array([[2.0, 3.0], [4.0, 5.0]]), 1)
    assert m.sum() == 4 * 4 and m[2, 1] and not m[7, 7]


def _textured(size: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random texture [size, size, 3] stretched to [0, 1] (detail at several scales)."""
    import cv2

    img = cv2.GaussianBlur(np.random.default_rng(seed).random((size, size, 3)), (0, 0), 1.0)
    return (img - img.min()) / (img.max() - img.min())


def _blurred_and_sharpened(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    sharpened = np.clip(img + (img - blurred), 0.0, 1.0)  # unsharp mask
    return blurred, sharpened


def test_haarpsi_and_ms_gmsd_on_constructed_images() -> None:
    img = _textured()
    blurred, _ = _blurred_and_sharpened(img)
    assert metrics.haarpsi(img, img) == pytest.approx(1.0, abs=1e-5)
    assert metrics.ms_gmsd(img, img) == pytest.approx(0.0, abs=1e-6)
    soft = metrics.haarpsi(blurred, img)
    assert soft < 0.9
    # blurring more lowers HaarPSI further; MS-GMSD (a distance) grows
    import cv2

    softer = cv2.GaussianBlur(img, (0, 0), 3.0)
    assert metrics.haarpsi(softer, img) < soft
    assert metrics.ms_gmsd(softer, img) > metrics.ms_gmsd(blurred, img) > 0.01
    # uint8 input is scored like the same image as floats
    as_bytes = (img * 255).round().astype(np.uint8)
    assert metrics.haarpsi(as_bytes, as_bytes) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="at least 16"):
        metrics.haarpsi(img[:8, :8], img[:8, :8])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ms_gmsd(img, img[:64])


def test_sharpness_ratio_blurred_below_one_sharpened_above() -> None:
    img = _textured(seed=3)
    blurred, sharpened = _blurred_and_sharpened(img)
    mask = np.zeros(img.shape[:2], bool)
    mask[20:60, 30:70] = True
    assert metrics.sharpness_ratio(img, img, mask) == pytest.approx(1.0)
    assert metrics.sharpness_ratio(blurred, img, mask) < 0.5
    assert metrics.sharpness_ratio(sharpened, img, mask) > 1.5
    # only the masked region counts: blurring away from it (a pixel of the 3×3 kernel's reach
    # left out) changes nothing
    away = np.ones_like(mask)
    away[19:61, 29:71] = False
    outside = img.copy()
    outside[away] = blurred[away]
    assert metrics.sharpness_ratio(outside, img, mask) == pytest.approx(1.0)
    flat = np.full_like(img, 0.5)
    assert np.isnan(metrics.sharpness_ratio(img, flat))
    with pytest.raises(ValueError, match="no pixels"):
        metrics.laplacian_energy(img, np.zeros(img.shape[:2], bool))
