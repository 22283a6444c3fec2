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
