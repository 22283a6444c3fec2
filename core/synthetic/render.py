"""Render the synthetic person: project the meshes with K and the poses, z-buffer, shade.

:class:`SynthScene` holds one person (looks, meshes, painted face, background) and renders any
expression ``params`` [3] (see :mod:`.head`) under any head pose and intrinsics, at any size.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..subject import MASK_HEAD, MASK_PERSON, MASK_TORSO
from . import head
from .appearance import background, look_for
from .config import STREAM_LOOK, STREAM_NOISE, SynthConfig
from .face import FaceTexture
from .head import HeadFrame
from .mesh import HAIR, NECK, SKIN, TORSO, GridMesh, build_meshes, shoulder_top
from .raster import rasterize
from .shading import Materials, sample, shade


def _normals(points: np.ndarray, orient: float) -> np.ndarray:
    """Unit outward vertex normals [R, C, 3] of a grid of camera-frame ``points`` [R, C, 3]."""
    n = np.cross(np.gradient(points, axis=0), np.gradient(points, axis=1)) * orient
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def _downsample_labels(lab: np.ndarray, size: int) -> np.ndarray:
    """Label bits [big, big] -> [size, size]: each pixel takes the part (head, torso or
    background) covering most of it (ties: head, torso, background), and the face, eye and mouth
    bits covering at least half of it where that part is the head."""
    bits = np.unpackbits(lab[..., None], axis=-1, bitorder="little").astype(np.float32)
    cover = cv2.resize(bits, (size, size), interpolation=cv2.INTER_AREA)  # [size, size, 8]
    head = cover[..., MASK_HEAD.bit_length() - 1]
    torso = cover[..., MASK_TORSO.bit_length() - 1]
    part = np.argmax(np.stack([head, torso, 1.0 - head - torso], -1), axis=-1)
    fine = np.packbits(cover >= 0.5, axis=-1, bitorder="little")[..., 0] & ~np.uint8(
        MASK_PERSON | MASK_HEAD | MASK_TORSO
    )
    out = np.where(part == 0, fine | np.uint8(MASK_PERSON | MASK_HEAD), 0)
    out = np.where(part == 1, np.uint8(MASK_PERSON | MASK_TORSO), out)
    return out.astype(np.uint8)


class SynthScene:
    """One synthetic person and their room, ready to render."""

    def __init__(self, cfg: SynthConfig, frame: HeadFrame | None = None) -> None:
        cfg.check()
        self.cfg = cfg
        self.frame = frame or HeadFrame()
        self.look = look_for(cfg)
        rng = cfg.rng(STREAM_LOOK, 1)
        self.face = FaceTexture(self.look, rng, head.rest_landmarks_cm())
        self.materials = Materials(self.look, rng)
        self.meshes: list[GridMesh] = build_meshes(cfg.mesh_step)
        self.orient = [m.orientation() for m in self.meshes]
        tris, objs, signs, start = [], [], [], 0
        for m, orient in zip(self.meshes, self.orient):
            t = m.triangles()
            tris.append(t + start)
            objs.append(np.full(len(t), m.obj, np.int64))
            signs.append(np.full(len(t), orient))
            start += m.points.shape[0] * m.points.shape[1]
        self.tris = np.concatenate(tris)  # [M, 3]
        self.tri_obj = np.concatenate(objs)  # [M]
        self.tri_orient = np.concatenate(signs)  # [M]
        self._backgrounds: dict[int, np.ndarray] = {}
        self._upsampled: dict[tuple[int, int], np.ndarray] = {}  # the last size's plate, flat
        self.design = np.concatenate([m.points.reshape(-1, 3) for m in self.meshes])  # [N, 3]
        self.rest_normals = np.concatenate([m.rest_normals().reshape(-1, 3) for m in self.meshes])
        self.uv = np.concatenate([m.uv.reshape(-1, 2) for m in self.meshes])  # [N, 2]
        self.weight = np.concatenate([m.head_weight.reshape(-1) for m in self.meshes])[:, None]
        skin = self.meshes[0]
        assert skin.obj == SKIN and skin.jaw is not None
        self._skin_n = skin.points.shape[0] * skin.points.shape[1]
        self._skin_jaw = skin.jaw

    def _vertices(
        self, mouth_cm: float, head_pose: np.ndarray, body: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera-frame vertices [N, 3], unit normals [N, 3] and deformed design points [N, 3]."""
        design = self.design
        normals = self.rest_normals
        if mouth_cm != 0.0:
            skin = self.meshes[0]
            moved = skin.points + mouth_cm * self._skin_jaw
            n = _normals(moved, self.orient[0])
            design = np.concatenate([moved.reshape(-1, 3), design[self._skin_n :]])
            normals = np.concatenate([n.reshape(-1, 3), normals[self._skin_n :]])
        q = head.to_head(design)
        w = self.weight
        X = w * (q @ head_pose[:3, :3].T + head_pose[:3, 3]) + (1.0 - w) * (
            q @ body[:3, :3].T + body[:3, 3]
        )
        n = w * (normals @ head_pose[:3, :3].T) + (1.0 - w) * (normals @ body[:3, :3].T)
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        return X, n, design

    # -- poses ---------------------------------------------------------------------------------
    def body_pose(self) -> np.ndarray:
        """The rest pose [4, 4] (internal head frame to camera): facing the camera, framed so
        the hair, face and shoulders fit the image."""
        d = self.cfg.distance
        pose = np.eye(4)
        pose[:3, 3] = (0.0, -0.025 * d, d)
        return pose

    def background(self, size: int) -> np.ndarray:
        """The clean background plate, RGB uint8 [size, size, 3]."""
        if size not in self._backgrounds:
            self._backgrounds[size] = background(self.cfg, self.look, size)
        return self._backgrounds[size]

    def landmarks(self, params: np.ndarray) -> np.ndarray:
        """Landmarks [..., 68, 3] in this scene's head frame (head units)."""
        return self.frame.landmarks(params)

    # -- rendering -----------------------------------------------------------------------------
    def render(
        self,
        params: np.ndarray,
        pose: np.ndarray,
        K: np.ndarray,
        size: int,
        body_shift: np.ndarray | None = None,
        noise_key: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Image RGB uint8 [size, size, 3] and label mask uint8 [size, size] (MASK_* bits).

        ``params`` [3] (mouth, left eye, right eye), ``pose`` [4, 4] head-to-camera in this
        scene's head frame, ``K`` [3, 3] at ``size``. ``body_shift`` [3] moves the torso (head
        units, camera frame) from its rest place. ``noise_key`` adds the camera's sensor noise
        drawn from that key (None: no noise).
        """
        ss = self.cfg.supersample
        big = size * ss
        Ks = np.array(K, dtype=np.float64, copy=True)
        Ks[:2] *= ss
        params = np.asarray(params, dtype=np.float64)
        lm_cm = head.landmarks_cm(params)
        tex, gloss, labels_tex = self.face.paint(lm_cm)
        head_pose = self.frame.internal_pose(np.asarray(pose, dtype=np.float64))
        body = self.body_pose()
        if body_shift is not None:
            body[:3, 3] += np.asarray(body_shift, dtype=np.float64)
        X, normals, design = self._vertices(float(params[head.MOUTH]) / head.SCALE, head_pose, body)
        z = X[:, 2]
        xy = X[:, :2] / np.maximum(z, 1e-9)[:, None] * Ks[[0, 1], [0, 1]] + Ks[:2, 2]
        a, b, d = X[self.tris[:, 0]], X[self.tris[:, 1]], X[self.tris[:, 2]]
        # outward normal = -orient * (b - a) x (d - a) (see GridMesh.triangles); a face is seen
        # from the front when it points against the ray to it: back faces are culled
        facing = np.einsum("ij,ij->i", np.cross(b - a, d - a), a) * self.tri_orient > 0
        frags = rasterize(xy, z, self.tris[facing], big, big)
        tris = self.tris[facing]
        obj = self.tri_obj[facing][frags.tri]
        attr = np.concatenate([design, normals, self.uv, X], axis=1)
        at = frags.interpolate(tris, attr)  # [P, 11]
        p_design, normal, tuv, pos = at[:, :3], at[:, 3:6], at[:, 6:8], at[:, 8:11]
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        view = -pos / np.linalg.norm(pos, axis=1, keepdims=True)
        colour = np.zeros((len(obj), 3))
        labels = np.zeros(len(obj), np.uint8)
        self._shade_skin(
            obj == SKIN, p_design, normal, view, tex, gloss, labels_tex, colour, labels
        )
        m = self.materials
        for part, albedo, part_gloss, ambient, shininess in (
            (HAIR, m.hair_albedo, 0.45, 0.3, 14.0),
            (NECK, m.neck_albedo, 0.1, 0.36, 20.0),
        ):
            sel = obj == part
            colour[sel] = shade(
                albedo(tuv[sel]),
                normal[sel],
                view[sel],
                np.full(sel.sum(), part_gloss),
                ambient,
                shininess,
            )
        sel = obj == TORSO
        top = shoulder_top(tuv[sel, 0])
        colour[sel] = shade(
            self.materials.shirt_albedo(tuv[sel], top),
            normal[sel],
            view[sel],
            np.full(sel.sum(), 0.05),
            0.42,
            8.0,
        )
        labels |= np.where((obj == SKIN) | (obj == HAIR), MASK_HEAD, 0).astype(np.uint8)
        labels |= np.where((obj == NECK) | (obj == TORSO), MASK_TORSO, 0).astype(np.uint8)
        labels |= np.uint8(MASK_PERSON)
        return self._finish(size, ss, frags.pixel, colour, labels, noise_key)

    def _shade_skin(
        self,
        sel: np.ndarray,
        p_design: np.ndarray,
        normal: np.ndarray,
        view: np.ndarray,
        tex: np.ndarray,
        gloss: np.ndarray,
        labels_tex: np.ndarray,
        colour: np.ndarray,
        labels: np.ndarray,
    ) -> None:
        """Colour and face/eye/mouth label bits of the visible skin points ``sel`` [P]."""
        c = self.face.canvas
        t = c.texel(p_design[sel, :2])
        alb = sample(tex, t[:, 0], t[:, 1])
        gl = sample(gloss, t[:, 0], t[:, 1])[:, 0]
        facing = np.clip(np.sum(normal[sel] * view[sel], axis=1), 0.0, 1.0)
        alb = alb * (0.7 + 0.3 * np.sqrt(facing))[:, None]  # skin darkens at grazing angles
        colour[sel] = shade(alb, normal[sel], view[sel], gl, 0.36, 22.0)
        h, w = labels_tex.shape
        col = np.clip(np.rint(t[:, 0]).astype(np.int64), 0, w - 1)
        row = np.clip(np.rint(t[:, 1]).astype(np.int64), 0, h - 1)
        labels[sel] |= labels_tex[row, col]

    def _finish(
        self,
        size: int,
        ss: int,
        pixel: np.ndarray,
        colour: np.ndarray,
        labels: np.ndarray,
        noise_key: int | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Composite the visible points over the background, filter down, add sensor noise."""
        big = size * ss
        key = (size, ss)
        if key not in self._upsampled:
            bg = self.background(size)
            up = np.repeat(np.repeat(bg, ss, 0), ss, 1).reshape(-1, 3).astype(np.float32)
            self._upsampled = {key: up}
        flat = self._upsampled[key].copy()
        flat[pixel] = np.clip(colour, 0.0, 255.0)
        img: np.ndarray = flat.reshape(big, big, 3)
        lab_flat = np.zeros(big * big, np.uint8)
        lab_flat[pixel] = labels
        lab: np.ndarray = lab_flat.reshape(big, big)
        if ss > 1:
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            lab = _downsample_labels(lab, size)
        img = cv2.GaussianBlur(img, (0, 0), 0.45)
        if noise_key is not None and self.cfg.noise > 0:
            rng = self.cfg.rng(STREAM_NOISE, noise_key)
            img = img + rng.standard_normal(img.shape).astype(np.float32) * self.cfg.noise
        return np.clip(np.rint(img), 0, 255).astype(np.uint8), lab
