"""Materials and lighting of the synthetic person (colours per visible point, camera frame)."""

from __future__ import annotations

import cv2
import numpy as np

from .appearance import Look, smooth_noise

KEY = np.array([-0.5, -0.55, -0.67]) / np.linalg.norm([-0.5, -0.55, -0.67])
"""Direction toward the key light, camera frame (upper left of the image, in front)."""
FILL = np.array([0.75, -0.1, -0.65]) / np.linalg.norm([0.75, -0.1, -0.65])
"""Direction toward the weaker fill light (image right)."""


def sample(tex: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Bilinear lookup of ``tex`` [h, w, C] (or [h, w]) at continuous texel coords [P] -> [P, C]."""
    h, w = tex.shape[:2]
    if len(col) == 0:
        return np.zeros((0, 1 if tex.ndim == 2 else tex.shape[2]), np.float32)
    n = len(col)
    rows = -(-n // 1024)  # OpenCV maps are images: lay the P lookups out 1024 wide
    map_x = np.zeros(rows * 1024, np.float32)
    map_y = np.zeros(rows * 1024, np.float32)
    map_x[:n] = np.clip(col, 0.0, w - 1.0)
    map_y[:n] = np.clip(row, 0.0, h - 1.0)
    out = cv2.remap(
        np.ascontiguousarray(tex, dtype=np.float32),
        map_x.reshape(rows, 1024),
        map_y.reshape(rows, 1024),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out.reshape(rows * 1024, -1)[:n]


def shade(
    albedo: np.ndarray,
    normal: np.ndarray,
    view: np.ndarray,
    gloss: np.ndarray,
    ambient: float,
    shininess: float,
) -> np.ndarray:
    """Colour [P, 3] of points with ``albedo`` [P, 3], unit ``normal`` [P, 3] and unit ``view``
    [P, 3] (toward the camera): wrapped Lambert key + fill + ambient, Blinn specular x gloss."""
    nk = normal @ KEY
    diffuse = (
        ambient
        + 0.7 * np.clip((nk + 0.25) / 1.25, 0.0, None)
        + 0.22 * np.clip(normal @ FILL, 0.0, None)
    )
    half = KEY + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = gloss * np.clip(np.sum(normal * half, axis=1), 0.0, None) ** shininess
    return albedo * diffuse[:, None] + 255.0 * 0.22 * spec[:, None]


class Materials:
    """Textures of the hair and the shirt, and the neck's colour, for one :class:`Look`."""

    def __init__(self, look: Look, rng: np.random.Generator) -> None:
        self.look = look
        # hair: strands run along t (rows), vary quickly across s (columns)
        noise = rng.standard_normal((64, 1024)).astype(np.float32)
        strands: np.ndarray = cv2.GaussianBlur(noise, (0, 0), sigmaX=1.2, sigmaY=6.0)
        strands /= strands.std() + 1e-9
        self.hair = (np.asarray(look.hair, np.float32) * (1.0 + 0.28 * strands[..., None])).clip(
            0, 255
        )
        folds = smooth_noise(rng, (128, 128), 5).astype(np.float32)
        self.shirt = np.asarray(look.shirt, np.float32) * (1.0 + 0.07 * folds[..., None])

    def hair_albedo(self, uv: np.ndarray) -> np.ndarray:
        """Hair colour [P, 3] at (s, t) ``uv`` [P, 2]: s in [-pi, pi] around, t 0 crown 1 edge."""
        h, w = self.hair.shape[:2]
        col = (uv[:, 0] + np.pi) / (2 * np.pi) * (w - 1)
        row = np.clip(uv[:, 1], 0.0, 1.0) * (h - 1)
        return sample(self.hair, col, row)

    def shirt_albedo(self, uv: np.ndarray, top: np.ndarray) -> np.ndarray:
        """Shirt colour [P, 3] at (x, y) cm ``uv`` [P, 2]; ``top`` [P] the collar/shoulder y."""
        h, w = self.shirt.shape[:2]
        col = (uv[:, 0] + 25.0) / 50.0 * (w - 1)
        row = np.clip((uv[:, 1] - 15.0) / 40.0, 0.0, 1.0) * (h - 1)
        out = sample(self.shirt, col, row)
        rib = np.exp(-(((uv[:, 1] - top) / 0.7) ** 2)) * np.clip(
            (8.0 - np.abs(uv[:, 0])) / 2.0, 0, 1
        )
        return out * (1.0 - 0.2 * rib)[:, None]

    def neck_albedo(self, uv: np.ndarray) -> np.ndarray:
        """Skin colour [P, 3] of the neck at (s, y) ``uv``, shadowed under the chin."""
        y = uv[:, 1]
        shadow = 0.55 + 0.45 * np.clip((y - 10.5) / 5.0, 0.0, 1.0)
        return np.asarray(self.look.skin, np.float64)[None] * shadow[:, None]
