"""Colours of the synthetic person and the static background behind them, drawn from the seed."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import RGB, STREAM_BACKGROUND, STREAM_LOOK, SynthConfig

SKIN_TONES: tuple[RGB, ...] = (
    (236, 192, 164), (224, 172, 138), (203, 148, 112), (176, 122, 88), (141, 94, 66),
)  # fmt: skip
HAIR_COLOURS: tuple[RGB, ...] = ((46, 32, 24), (78, 52, 34), (28, 24, 22), (120, 84, 50))
IRIS_COLOURS: tuple[RGB, ...] = ((92, 60, 36), (64, 44, 30), (72, 96, 118), (88, 104, 70))
SHIRT_COLOURS: tuple[RGB, ...] = (
    (40, 62, 110), (120, 40, 46), (60, 90, 70), (200, 200, 196), (52, 52, 58), (150, 110, 70),
)  # fmt: skip
WALL_COLOURS: tuple[RGB, ...] = (
    (196, 190, 176), (170, 182, 190), (204, 196, 184), (150, 160, 150), (188, 170, 160),
)  # fmt: skip
LIP_TINT = np.array([0.95, 0.62, 0.65])
"""Lip colour relative to the skin (redder, darker in green and blue)..."""
LIP_PINK = np.array([175.0, 85.0, 95.0])
"""...mixed 40 % with this pink."""


@dataclass(frozen=True)
class Look:
    """The colours of one synthetic person (RGB 0-255)."""

    skin: RGB
    hair: RGB
    iris: RGB
    shirt: RGB
    wall: RGB

    @property
    def lips(self) -> np.ndarray:
        """Lip colour [3] (float RGB 0-255)."""
        return np.clip(0.6 * np.asarray(self.skin) * LIP_TINT + 0.4 * LIP_PINK, 0, 255)


def look_for(cfg: SynthConfig) -> Look:
    """The person's colours: the config's where given, otherwise drawn from the seed."""
    rng = cfg.rng(STREAM_LOOK)

    def pick(given: RGB | None, options: tuple[RGB, ...]) -> RGB:
        k = int(rng.integers(len(options)))  # always drawn, so the streams stay aligned
        return tuple(int(c) for c in (given or options[k]))  # type: ignore[return-value]

    return Look(
        skin=pick(cfg.skin_color, SKIN_TONES),
        hair=pick(cfg.hair_color, HAIR_COLOURS),
        iris=pick(cfg.iris_color, IRIS_COLOURS),
        shirt=pick(cfg.torso_color, SHIRT_COLOURS),
        wall=pick(cfg.background_color, WALL_COLOURS),
    )


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Zero-mean, unit-std noise [H, W] with features about ``1 / cells`` of the image wide."""
    grid = rng.standard_normal((cells + 3, cells + 3))
    big = cv2.resize(
        grid,
        (shape[1] * (cells + 3) // cells, shape[0] * (cells + 3) // cells),
        interpolation=cv2.INTER_CUBIC,
    )
    out = big[: shape[0], : shape[1]]
    return (out - out.mean()) / (out.std() + 1e-9)


def background(cfg: SynthConfig, look: Look, size: int) -> np.ndarray:
    """The static room behind the person, RGB uint8 [size, size, 3], out of focus.

    A wall with a light gradient and blotches, a window with daylight, a door frame, a shelf
    with books and a plant; all placed in relative coordinates, so every size shows the same.
    """
    rng = cfg.rng(STREAM_BACKGROUND)
    s = size
    yy, xx = np.mgrid[0:s, 0:s] / s
    wall = np.asarray(look.wall, np.float64)
    img = wall * (0.92 + 0.16 * (1.0 - yy))[..., None] * (0.95 + 0.1 * xx)[..., None]
    img *= (1.0 + 0.05 * smooth_noise(rng, (s, s), 6))[..., None]
    side = int(rng.integers(2))  # window on the left or the right
    wx0 = 0.04 if side == 0 else 0.66
    win = (slice(int(0.08 * s), int(0.5 * s)), slice(int(wx0 * s), int((wx0 + 0.28) * s)))
    sky = np.array([232.0, 238.0, 246.0]) * (1.0 + 0.04 * smooth_noise(rng, (s, s), 3))[..., None]
    img[win] = sky[win]
    frame = np.array([120.0, 112.0, 104.0])
    for k in (0.0, 0.5, 1.0):  # window frame bars
        bar = int((wx0 + 0.28 * k) * s)
        img[win[0], max(0, bar - s // 100) : bar + s // 100] = frame
    img[int(0.29 * s) - s // 120 : int(0.29 * s) + s // 120, win[1]] = frame
    door_x = 0.9 if side == 0 else 0.06
    img[:, int(door_x * s) : int((door_x + 0.02) * s)] *= 0.72
    shelf_y = 0.62 + 0.05 * rng.random()
    sx0 = 0.02 if side == 1 else 0.7
    img[int(shelf_y * s) : int((shelf_y + 0.025) * s), int(sx0 * s) : int((sx0 + 0.28) * s)] = (
        98.0,
        72.0,
        50.0,
    )
    x = sx0 + 0.01
    while x < sx0 + 0.26:  # books standing on the shelf
        w = 0.015 + 0.02 * rng.random()
        h = 0.08 + 0.07 * rng.random()
        colour = rng.uniform(40, 200, 3)
        img[int((shelf_y - h) * s) : int(shelf_y * s), int(x * s) : int((x + w) * s)] = colour
        x += w + 0.004
    px, py = (0.86 if side == 0 else 0.12), 0.78
    for _ in range(14):  # a plant: overlapping leaves
        cx = int((px + rng.normal(0, 0.05)) * s)
        cy = int((py + rng.normal(0, 0.06)) * s)
        ax = max(1, int(s * (0.02 + 0.02 * rng.random())))
        leaf = (float(rng.uniform(30, 70)), float(rng.uniform(80, 130)), float(rng.uniform(30, 60)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(img, (cx, cy), (ax, ax // 2 + 1), angle, 0, 360, leaf, -1)
    img = cv2.GaussianBlur(img, (0, 0), 0.012 * s)  # shallow depth of field
    grain = rng.standard_normal((s, s, 1)) * 2.0
    return np.clip(img + grain, 0, 255).astype(np.uint8)
