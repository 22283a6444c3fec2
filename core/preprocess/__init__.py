"""Preprocessing: from a raw video to a subject folder (tracking, pose, masks, background).

``preprocess(video, out, size=512, focal=None)`` is the cancellable generator (see
:mod:`.pipeline`); the steps live in small modules: ``tracking`` (MediaPipe Face Mesh, face
choice, gaps), ``ibug68`` (mesh → 68 points), ``shape`` and ``pose`` (mean shape, head frame,
PnP, focal length, smoothing), ``eyes``, ``segment`` (person and region masks), ``background``
(plate), ``crop``, ``report`` and ``writeout``.
"""

from .config import PreprocessConfig, PreprocessError
from .pipeline import preprocess

__all__ = ["PreprocessConfig", "PreprocessError", "preprocess"]
