"""The face's colour texture: skin, brows and nose (static), eyes and mouth (per frame).

Painted over the design frame's (x, y) plane (:class:`.paint.Canvas`) from the current landmarks,
so the eyes, lips and mouth opening always sit exactly where the landmarks say. The renderer looks
the texture up at each visible skin point's (x, y).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..subject import MASK_FACE, MASK_LEFT_EYE, MASK_MOUTH, MASK_RIGHT_EYE
from . import shape
from .appearance import Look, smooth_noise
from .paint import Canvas, blend, catmull_rom, gaussian

# Eye outlines as iBUG indices: outer corner, upper lid (outer, inner), inner corner, lower lid.
EYE_OUTLINE = {"left": (45, 44, 43, 42, 47, 46), "right": (36, 37, 38, 39, 40, 41)}
BROWS = ((17, 18, 19, 20, 21), (26, 25, 24, 23, 22))  # outer -> inner
FACE_OUTLINE = (*range(17), 26, 25, 24, 23, 22, 21, 20, 19, 18, 17)


def eye_polygon(lm: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Smooth upper and lower lid curves [K, 2] (cm) from outer to inner corner."""
    o, u1, u2, i, l2, l1 = EYE_OUTLINE[side]
    upper = catmull_rom(lm[[o, u1, u2, i], :2], 10)
    lower = catmull_rom(lm[[o, l1, l2, i], :2], 10)
    return upper, lower


def outer_lips(lm: np.ndarray) -> np.ndarray:
    return catmull_rom(lm[48:60, :2], 8, closed=True)


def inner_lips(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower inner-lip curves [K, 2], right corner (60) to left corner (64)."""
    upper = catmull_rom(lm[[60, 61, 62, 63, 64], :2], 8)
    lower = catmull_rom(lm[[60, 67, 66, 65, 64], :2], 8)
    return upper, lower


class FaceTexture:
    """The painted face of one synthetic person."""

    def __init__(self, look: Look, rng: np.random.Generator, rest: np.ndarray) -> None:
        """``rest``: rest landmarks [68, 3] in the design frame (cm)."""
        self.look = look
        self.canvas = c = Canvas()
        h, w = c.shape
        x, y = c.grid(slice(0, h), slice(0, w))
        skin = np.asarray(look.skin, np.float32)
        col = np.broadcast_to(skin, (h, w, 3)).astype(np.float32)
        col = col * (1.0 + 0.03 * smooth_noise(rng, (h, w), 10))[..., None].astype(np.float32)
        ax = np.abs(x)
        blush = gaussian(ax, y, 3.9, 3.2, 1.5, 1.3)[..., None]
        col *= (1.0 + blush * np.array([0.02, -0.07, -0.06])).astype(np.float32)
        col *= (1.0 + 0.035 * gaussian(x, y, 0.0, -5.0, 4.0, 2.0))[..., None].astype(np.float32)
        col *= self._occlusion(x, y)[..., None]
        pores = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
        col *= (1.0 + 0.06 * pores)[..., None]
        self.gloss = (
            0.25
            + 0.5 * gaussian(x, y, 0.0, 3.4, 0.7, 0.9)
            + 0.2 * gaussian(x, y, 0.0, -5.5, 3.0, 1.5)
        ).astype(np.float32)
        self._paint_static(col, rng, rest)
        self.base = col

    # -- static features -------------------------------------------------------------------
    def _occlusion(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ambient occlusion from the height field's concavity (sockets, creases, sulcus)."""
        z = shape.surface_z(x, y).astype(np.float32)
        sigma = 0.25 * self.canvas.ppc
        lap = cv2.Laplacian(cv2.GaussianBlur(z, (0, 0), sigma), cv2.CV_32F, ksize=3)
        concave = np.clip(-lap * self.canvas.ppc**2, 0.0, None)
        return (1.0 - np.clip(0.22 * concave, 0.0, 0.35)).astype(np.float32)

    def _paint_static(self, col: np.ndarray, rng: np.random.Generator, rest: np.ndarray) -> None:
        c = self.canvas
        hair = np.asarray(self.look.hair, np.float32)
        skin = np.asarray(self.look.skin, np.float32)
        for brow in BROWS:
            curve = catmull_rom(rest[list(brow), :2], 10)
            d = np.gradient(curve, axis=0)
            n = np.stack([-d[:, 1], d[:, 0]], -1) / np.linalg.norm(d, axis=1, keepdims=True)
            n *= np.sign(n[:, 1:2] + 1e-9)  # pointing down
            t = np.linspace(0.0, 1.0, len(curve))[:, None]
            thick = 0.22 + 0.3 * t  # thin at the outer end
            poly = np.concatenate([curve - n * thick * 0.55, (curve + n * thick * 0.45)[::-1]])
            rows, cols = c.window(poly, 0.3)
            cover = cv2.GaussianBlur(c.coverage(poly, rows, cols), (0, 0), 1.0)
            strokes = np.zeros_like(cover)
            for _ in range(160):  # hairs slanting outward and up
                k = int(rng.integers(len(curve)))
                p = curve[k] + n[k] * thick[k, 0] * rng.uniform(-0.5, 0.45)
                out = np.sign(curve[0, 0] - curve[-1, 0])
                seg = np.array([p, p + np.array([out * 0.35, -0.12]) * rng.uniform(0.5, 1.0)])
                strokes = np.maximum(strokes, c.stroke(seg, rows, cols, 0.05))
            alpha = np.clip(cover * (0.6 + 0.4 * strokes), 0.0, 0.95)
            blend(col[rows, cols], hair * 0.85, alpha)
        dark = skin * np.array([0.3, 0.2, 0.2], np.float32)
        for sx in (-1.0, 1.0):
            # nostrils under the tip, and the crease around each wing of the nose
            rows, cols = c.window(np.array([[sx * 0.6, 4.3]]), 1.2)
            x, y = c.grid(rows, cols)
            u = (x - sx * 0.55) * np.cos(sx * 0.3) + (y - 4.32) * np.sin(sx * 0.3)
            v = -(x - sx * 0.55) * np.sin(sx * 0.3) + (y - 4.32) * np.cos(sx * 0.3)
            nostril = np.clip(1.3 - np.hypot(u / 0.3, v / 0.14), 0.0, 1.0)
            blend(col[rows, cols], dark, nostril.astype(np.float32))
            arc = catmull_rom(
                np.array([[sx * 0.6, 3.5], [sx * 1.5, 3.75], [sx * 1.55, 4.25], [sx * 1.15, 4.45]]),
                8,
            )
            self._soft_line(col, arc, 0.1, skin * 0.55, 0.45, 1.5)
            fold = catmull_rom(
                np.array([[sx * 1.55, 4.35], [sx * 2.4, 5.4], [sx * 2.9, 6.6], [sx * 3.1, 7.6]]), 8
            )
            self._soft_line(col, fold, 0.18, skin * 0.7, 0.35, 2.5)
        for side in ("left", "right"):
            upper, _ = eye_polygon(rest, side)
            crease = (
                upper
                + np.array([0.0, -0.42]) * np.sin(np.linspace(0.15, 2.99, len(upper)))[:, None]
            )
            self._soft_line(col, crease, 0.09, skin * 0.6, 0.55, 1.2)
            cx = float(upper[:, 0].mean())
            rows, cols = c.window(np.array([[cx, -0.6]]), 2.6)
            x, y = c.grid(rows, cols)
            shade = 0.1 * gaussian(x, y, cx, -0.7, 1.6, 0.6) + 0.08 * gaussian(
                x, y, cx, 0.9, 1.2, 0.35
            )
            col[rows, cols] *= (1.0 - shade)[..., None].astype(np.float32)

    def _soft_line(
        self,
        col: np.ndarray,
        curve: np.ndarray,
        width: float,
        colour: np.ndarray,
        alpha: float,
        blur: float,
    ) -> None:
        """Blend a blurred stroke along ``curve`` [K, 2] (cm) into ``col``."""
        rows, cols = self.canvas.window(curve, 0.4)
        a = cv2.GaussianBlur(self.canvas.stroke(curve, rows, cols, width), (0, 0), blur)
        blend(col[rows, cols], np.asarray(colour, np.float32), a * alpha)

    # -- per frame -----------------------------------------------------------------------------
    def paint(self, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Texture for the landmarks ``lm`` [68, 3] (cm): colour [h, w, 3] float32 0-255,
        gloss [h, w] float32 and label bits [h, w] uint8 (face, eyes, mouth)."""
        col = self.base.copy()
        gloss = self.gloss.copy()
        for side in ("left", "right"):
            self._paint_eye(col, lm, side)
        self._paint_mouth(col, gloss, lm)
        return col, gloss, self.labels(lm)

    def labels(self, lm: np.ndarray) -> np.ndarray:
        """Label bits [h, w] uint8 of the face, eye and mouth polygons for ``lm`` [68, 3]."""
        c = self.canvas
        out = np.zeros(c.shape, np.uint8)
        full = (slice(0, out.shape[0]), slice(0, out.shape[1]))
        regions = [(MASK_FACE, lm[list(FACE_OUTLINE), :2]), (MASK_MOUTH, outer_lips(lm))]
        for side, bit in (("left", MASK_LEFT_EYE), ("right", MASK_RIGHT_EYE)):
            upper, lower = eye_polygon(lm, side)
            regions.append((bit, np.concatenate([upper, lower[::-1]])))
        for bit, poly in regions:
            out |= (c.coverage(poly, *full) >= 0.5).astype(np.uint8) * np.uint8(bit)
        return out

    def _paint_eye(self, col: np.ndarray, lm: np.ndarray, side: str) -> None:
        c = self.canvas
        upper, lower = eye_polygon(lm, side)
        poly = np.concatenate([upper, lower[::-1]])
        o, _, _, i, _, _ = EYE_OUTLINE[side]
        corners = lm[[o, i], :2]
        rows, cols = c.window(np.concatenate([corners, corners - np.array([0.0, 1.0])]), 0.5)
        x, y = c.grid(rows, cols)
        cover = c.coverage(poly, rows, cols)
        cx = float(corners[:, 0].mean())
        half = float(abs(corners[1, 0] - corners[0, 0])) / 2
        cy = float(corners[:, 1].mean()) - 0.06
        sclera = np.array([236.0, 230.0, 226.0], np.float32)
        eye = np.broadcast_to(sclera, (*x.shape, 3)).astype(np.float32)
        eye *= (1.0 - 0.3 * np.clip(np.abs(x - cx) / half, 0.0, 1.0) ** 2)[..., None]
        r = np.hypot(x - cx, y - cy)
        ang = np.arctan2(y - cy, x - cx)
        iris_r = 0.6
        streak = 0.8 + 0.2 * np.cos(ang * 23.0) * np.cos(ang * 7.0 + 1.0)
        iris = np.asarray(self.look.iris, np.float32) * (0.75 + 0.4 * r / iris_r)[..., None]
        iris *= streak[..., None].astype(np.float32)
        iris *= np.where(r > 0.82 * iris_r, 0.55, 1.0)[..., None].astype(np.float32)
        blend(eye, iris, np.clip((iris_r - r) * c.ppc, 0.0, 1.0).astype(np.float32))
        pupil = np.clip((0.24 - r) * c.ppc, 0.0, 1.0).astype(np.float32)
        blend(eye, np.array([14.0, 10.0, 10.0], np.float32), pupil)
        glint = np.clip((0.085 - np.hypot(x - cx + 0.18, y - cy + 0.18)) * c.ppc, 0.0, 1.0)
        blend(eye, np.array([250.0, 250.0, 250.0], np.float32), glint.astype(np.float32))
        # the upper lid's shadow on the eyeball
        lid_y = np.interp(x, np.sort(upper[:, 0]), upper[np.argsort(upper[:, 0]), 1])
        eye *= (1.0 - 0.45 * np.exp(-np.clip(y - lid_y, 0.0, None) / 0.18))[..., None].astype(
            np.float32
        )
        blend(col[rows, cols], eye, cover)
        lash = c.stroke(upper, rows, cols, 0.11)
        blend(col[rows, cols], np.array([30.0, 22.0, 20.0], np.float32), lash * 0.95)
        lower_line = c.stroke(lower, rows, cols, 0.05)
        skin = np.asarray(self.look.skin, np.float32)
        blend(col[rows, cols], skin * np.array([0.75, 0.6, 0.6], np.float32), lower_line * 0.6)

    def _paint_mouth(self, col: np.ndarray, gloss: np.ndarray, lm: np.ndarray) -> None:
        c = self.canvas
        outer = outer_lips(lm)
        up, lo = inner_lips(lm)
        rows, cols = c.window(outer, 0.4)
        x, y = c.grid(rows, cols)
        lips = c.coverage(outer, rows, cols)
        lips = cv2.GaussianBlur(lips, (0, 0), 0.9)
        mid = np.interp(x, up[:, 0], (up[:, 1] + lo[:, 1]) / 2)
        tone = np.where(y < mid, 0.86, 1.0) * (1.0 + 0.1 * gaussian(x, y, 0.0, 7.1, 1.0, 0.25))
        lip_col = self.look.lips.astype(np.float32) * tone[..., None].astype(np.float32)
        blend(col[rows, cols], lip_col, lips)
        gloss[rows, cols] += 0.6 * lips * gaussian(x, y, 0.0, 7.05, 1.2, 0.3).astype(np.float32)
        cavity = c.coverage(np.concatenate([up, lo[::-1]]), rows, cols)
        top = np.interp(x, up[:, 0], up[:, 1])
        bottom = np.interp(x, lo[:, 0], lo[:, 1])
        inside = np.array([70.0, 26.0, 30.0], np.float32) * (
            0.45 + 0.55 * np.clip(np.abs(x) / 2.2, 0.0, 1.0)
        )[..., None].astype(np.float32)
        gap = float(lm[66, 1] - lm[62, 1])
        teeth = (y - top < min(0.3, 0.45 * gap)) & (np.abs(x) < 1.7)
        gaps = np.abs(np.sin(x * np.pi / 0.42)) > 0.12
        tooth = np.array([222.0, 216.0, 200.0], np.float32) * (
            1.0 - 0.45 * np.clip(np.abs(x) / 1.7, 0.0, 1.0) ** 2
        )[..., None].astype(np.float32)
        blend(inside, tooth * np.where(gaps, 1.0, 0.75)[..., None], teeth.astype(np.float32))
        low = (bottom - y < min(0.14, 0.2 * gap)) & (np.abs(x) < 1.2) & (gap > 0.45)
        blend(inside, tooth * 0.8, low.astype(np.float32))
        tongue = gaussian(x, y, 0.0, float(lm[66, 1]) - 0.1, 0.9, 0.35) * (gap > 0.5)
        blend(inside, np.array([150.0, 70.0, 76.0], np.float32), 0.8 * tongue.astype(np.float32))
        blend(col[rows, cols], inside, cavity)
        seam = c.stroke(up, rows, cols, 0.07)
        blend(col[rows, cols], np.array([70.0, 30.0, 34.0], np.float32), seam * 0.8)
