"""MediaPipe Face Mesh (478 vertices) → the 68 iBUG points, from ``resources/mediapipe_to_ibug68.json``.

Each iBUG point is the mean of one or two mesh vertices listed in the JSON map; the map also
lists the skull-fixed ("stable") mesh vertices used for rigid alignment: the mid-face band from
the brow line to the nose tip (eye sockets and corners, nose, upper cheeks, temples) without
eyelids, brows and irises. The forehead is left out: the tracker moves it with the mouth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ..landmarks import NUM_LANDMARKS

MAP_NAME = "mediapipe_to_ibug68.json"
NUM_MESH_VERTICES = 478


@dataclass(frozen=True)
class MeshMap:
    """The mesh → iBUG-68 map as arrays."""

    weights: np.ndarray
    """[68, 478] float64: row i averages the mesh vertices of iBUG point i."""
    stable_vertices: np.ndarray
    """[S] int: skull-fixed mesh vertices for rigid alignment."""
    groups: tuple[str, ...]
    """[68] group name per iBUG point ("jaw", "right_eye", ...)."""


def parse_map(doc: dict) -> MeshMap:
    """Build a :class:`MeshMap` from the JSON document; raise ValueError when it is malformed."""
    if doc.get("format") != "talkstudio.mesh_to_ibug68":
        raise ValueError(f"{MAP_NAME}: not a mesh-to-iBUG-68 map")
    n = int(doc.get("num_mesh_vertices", NUM_MESH_VERTICES))
    points = doc["points"]
    if [p["ibug"] for p in points] != list(range(NUM_LANDMARKS)):
        raise ValueError(f"{MAP_NAME}: points must list iBUG 0..67 in order")
    weights = np.zeros((NUM_LANDMARKS, n))
    for p in points:
        idx = [int(v) for v in p["mesh"]]
        if not idx or min(idx) < 0 or max(idx) >= n:
            raise ValueError(f"{MAP_NAME}: iBUG {p['ibug']} has bad mesh indices {idx}")
        weights[p["ibug"], idx] += 1.0 / len(idx)
    stable = np.asarray(doc["stable_mesh_vertices"], dtype=np.int64)
    if stable.size < 6 or stable.min() < 0 or stable.max() >= n:
        raise ValueError(f"{MAP_NAME}: stable_mesh_vertices must hold >= 6 valid indices")
    return MeshMap(weights, stable, tuple(str(p["group"]) for p in points))


@lru_cache(maxsize=1)
def mesh_map() -> MeshMap:
    """The packaged map (read once)."""
    text = resources.files("talkstudio.resources").joinpath(MAP_NAME).read_text("utf-8")
    return parse_map(json.loads(text))


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """iBUG-68 points [..., 68, D] of mesh vertices ``mesh`` [..., 478, D]."""
    return np.einsum("kn,...nd->...kd", mesh_map().weights, mesh)
