"""Face tracking with MediaPipe Face Mesh, the choice of the one subject, and gap filling.

Mesh vertices are returned in pixels of the image they were found in: ``(x * W, y * H, z * W)``
where MediaPipe's ``x, y`` are normalised image coordinates and ``z`` is its relative depth
(origin near the head's centre, larger = farther from the camera, "roughly the scale of x").
The models ship inside the ``mediapipe`` wheel; nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..closing import Closes
from ..progress import Progress
from .config import PreprocessError
from .ibug68 import NUM_MESH_VERTICES


class FaceMeshTracker(Closes):
    """MediaPipe Face Mesh in video mode (tracks between frames, re-detects when lost)."""

    def __init__(self, max_faces: int = 2, static: bool = False) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log chatter
        from mediapipe.python.solutions import face_mesh

        self._mesh: Any = face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        """Every face in ``rgb`` uint8 [H, W, 3] as mesh vertices [478, 3] in pixels."""
        h, w = rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(rgb))
        faces = []
        for lms in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in lms.landmark], dtype=np.float64)
            if len(pts) != NUM_MESH_VERTICES:
                continue
            faces.append(pts * np.array([w, h, w]))  # [478, 3]
        return faces

    def close(self) -> None:
        self._mesh.close()


def face_size(mesh: np.ndarray) -> float:
    """Larger side in pixels of the 2D bounding box of ``mesh`` [478, >=2]."""
    ext = mesh[:, :2].max(0) - mesh[:, :2].min(0)
    return float(ext.max())


@dataclass
class FaceChoice:
    """The one face followed through the video."""

    mesh: np.ndarray
    """[T, 478, 3] chosen face per frame (NaN where no face was found)."""
    found: np.ndarray
    """[T] bool: a face was found in the frame."""
    notes: list[str] = field(default_factory=list)
    """Lines for the user and the report."""


def choose_face(
    candidates: list[list[np.ndarray]],
    fps: float,
    equal_ratio: float = 0.8,
    equal_fraction: float = 0.2,
) -> FaceChoice:
    """Follow the largest consistent face through ``candidates`` (per frame, the faces found).

    Two faces of about equal size (the smaller at least ``equal_ratio`` of the larger) in more
    than ``equal_fraction`` of the frames with a face is an error: there is no way to tell the
    speaker. Otherwise the face nearest to the previous choice is followed (the largest where
    it jumps by more than its own size), and a smaller second face is reported.
    """
    t = len(candidates)
    mesh = np.full((t, NUM_MESH_VERTICES, 3), np.nan)
    found = np.zeros(t, dtype=bool)
    with_face = sum(1 for c in candidates if c)
    equal = [
        i
        for i, c in enumerate(candidates)
        if len(c) > 1
        and sorted((face_size(m) for m in c), reverse=True)[1]
        >= equal_ratio * max(face_size(m) for m in c)
    ]
    if with_face and len(equal) > equal_fraction * with_face:
        raise PreprocessError(
            f"two faces of about the same size appear in {len(equal)} of {t} frames (first at "
            f"{equal[0] / fps:.2f} s), so the speaker cannot be told apart. Talkstudio trains one "
            "person: crop or re-frame the video so that only the speaker's face is visible."
        )
    prev: np.ndarray | None = None
    extra = 0
    for i, faces in enumerate(candidates):
        if not faces:
            continue
        extra += len(faces) > 1
        sizes = [face_size(m) for m in faces]
        pick = int(np.argmax(sizes))
        if prev is not None and len(faces) > 1:
            centre = prev[:, :2].mean(0)
            dist = [np.linalg.norm(m[:, :2].mean(0) - centre) / face_size(prev) for m in faces]
            if min(dist) <= 1.0:
                pick = int(np.argmin(dist))
        mesh[i] = faces[pick]
        found[i] = True
        prev = faces[pick]
    notes = []
    if extra:
        notes.append(
            f"another, smaller face appears in {extra} frame(s); following the largest, "
            "consistent face"
        )
    return FaceChoice(mesh, found, notes)


LOOK_AGAIN_SIDE = 3.0
"""A frame the face was not found in is searched again in a square this many times the
nearest found face's size, centred on it (:func:`look_again`)."""
LOOK_AGAIN_PIXELS = 256
"""That square is resized to this side before the search: the face then fills about a third of
it, where Face Mesh's detector finds faces it misses when they are small in the whole frame."""


def _face_in_crop(tracker: FaceMeshTracker, rgb: np.ndarray, seed: np.ndarray) -> np.ndarray | None:
    """The face near ``seed`` [478, 3] (a face of a neighbouring frame, pixels) in ``rgb``
    [H, W, 3], searched in the square around the seed (pixels of ``rgb``), or None. A face of
    less than half or more than twice the seed's size, or farther from it than its own size, is
    not taken."""
    import cv2

    size = face_size(seed)
    cx, cy = (float(v) for v in seed[:, :2].mean(0))
    side = max(round(LOOK_AGAIN_SIDE * size), 16)
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    h, w = rgb.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if xb <= xa or yb <= ya:
        return None
    crop[ya - y0 : yb - y0, xa - x0 : xb - x0] = rgb[ya:yb, xa:xb]
    scale = side / LOOK_AGAIN_PIXELS
    small = cv2.resize(crop, (LOOK_AGAIN_PIXELS, LOOK_AGAIN_PIXELS), interpolation=cv2.INTER_AREA)
    best: np.ndarray | None = None
    for face in tracker(small):
        pts = face * scale + np.array([x0, y0, 0.0])  # back to pixels of rgb (z scales as x)
        near = np.linalg.norm(pts[:, :2].mean(0) - (cx, cy)) <= size
        plausible = near and 0.5 <= face_size(pts) / size <= 2.0
        if plausible and (best is None or face_size(pts) > face_size(best)):
            best = pts
    return best


def look_again(
    video: str | os.PathLike[str], choice: FaceChoice, fps: float
) -> Generator[Progress, None, list[str]]:
    """Search the frames of ``choice`` without a face once more, each in a square around the
    nearest face found (:data:`LOOK_AGAIN_SIDE`), enlarged (:data:`LOOK_AGAIN_PIXELS`): Face
    Mesh's detector misses faces that are small in the frame (a waist-up or full-body shot),
    although it follows them once found. ``choice`` is updated in place; yields progress per
    frame searched, returns notes. Runs at the start are searched backwards from the first
    face, the others forwards, each search centred on the face found in the frame before."""
    from ..media.frame_reader import FrameReader

    gaps = runs(~choice.found)
    if not gaps or not choice.found.any():
        return []
    total = sum(b - a for a, b in gaps)
    searched = found = 0
    with FrameReader(video, fps=fps) as reader, FaceMeshTracker(1, static=True) as tracker:
        for a, b in gaps:
            forward = a > 0
            order = range(a, b) if forward else range(b - 1, a - 1, -1)
            seed = choice.mesh[a - 1] if forward else choice.mesh[b]
            for i in order:
                face = _face_in_crop(tracker, reader[i], seed)
                if face is not None:
                    choice.mesh[i], choice.found[i] = face, True
                    seed = face
                    found += 1
                searched += 1
                yield Progress("track", searched, total, "looking again where the face was lost")
    if not found:
        return []
    return [f"the face was found in {found} of {total} untracked frame(s) by searching near it"]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges ``[a, b)`` where the bool array ``mask`` [T] is True."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def format_ranges(ranges: list[tuple[int, int]], fps: float, limit: int = 8) -> str:
    """``"1.20-2.40 s, 3.00-3.08 s"`` for frame ranges ``[a, b)``."""
    text = ", ".join(f"{a / fps:.2f}-{b / fps:.2f} s" for a, b in ranges[:limit])
    return text + (f" and {len(ranges) - limit} more" if len(ranges) > limit else "")


def fill_gaps(
    choice: FaceChoice, fps: float, max_gap_s: float = 0.5, max_fraction: float = 0.1
) -> tuple[np.ndarray, list[str]]:
    """Interpolate the untracked frames of ``choice``; return mesh [T, 478, 3] and notes.

    Runs inside the video are interpolated linearly between their tracked neighbours; runs at
    the start or end hold the nearest tracked frame. No face at all, or more than
    ``max_fraction`` of the frames untracked, raises :class:`PreprocessError` naming the ranges.
    """
    t = len(choice.found)
    gaps = runs(~choice.found)
    if not choice.found.any():
        raise PreprocessError(
            f"no face was found in any of the {t} frames. Talkstudio needs a video of one person "
            "facing the camera, face clearly visible and well lit."
        )
    missing = int((~choice.found).sum())
    if missing > max_fraction * t:
        raise PreprocessError(
            f"the face could not be tracked in {missing} of {t} frames ({100 * missing / t:.0f} "
            f"%, more than {100 * max_fraction:.0f} % allowed): {format_ranges(gaps, fps)}. "
            "Cut those parts out of the video (face turned away, covered or out of frame)."
        )
    mesh = choice.mesh.copy()
    for a, b in gaps:
        if a == 0:
            mesh[a:b] = mesh[b]
        elif b == t:
            mesh[a:b] = mesh[a - 1]
        else:
            w = (np.arange(a, b) - (a - 1)) / (b - (a - 1))  # [n] in (0, 1)
            mesh[a:b] = (1 - w)[:, None, None] * mesh[a - 1] + w[:, None, None] * mesh[b]
    notes = []
    if gaps:
        notes.append(
            f"{missing} untracked frame(s) filled by interpolation: {format_ranges(gaps, fps)}"
        )
    long = [(a, b) for a, b in gaps if (b - a) / fps > max_gap_s]
    if long:
        notes.append(
            f"gaps longer than {max_gap_s:.1f} s (filled, and left out of training and of "
            f"driven tracks): "
            f"{format_ranges(long, fps)}"
        )
    return mesh, notes
