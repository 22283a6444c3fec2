"""Synthetic subjects with exact ground truth: a parametric 3D head, speech-like audio, renders.

- :class:`SynthConfig` — everything that defines a clip; the same config gives the same bytes.
- :func:`synthesize` → :class:`SynthSequence` — audio, expression ``params`` [T, 3] (mouth jaw
  drop, left eye, right eye; see :mod:`.head`), head poses, and :meth:`SynthSequence.render`.
- :func:`write_synthetic` → :class:`SynthResult` — ``synthetic.mp4`` as a camera would record it
  and ``subject/``, a subject folder with ground-truth tracks that ``validate_subject`` accepts.
- :func:`render_params` and :func:`landmarks_for` — render / place any expression and pose.

Modules: :mod:`.shape` (face surface and rest landmarks, cm), :mod:`.head` (landmarks in head
units), :mod:`.mesh` (grid meshes), :mod:`.face` (painted face), :mod:`.raster` (z-buffer),
:mod:`.shading`, :mod:`.render` (the scene), :mod:`.speech` (audio), :mod:`.motion` (time
series), :mod:`.sequence`, :mod:`.writer`.
"""

from .config import SynthConfig
from .head import NEUTRAL, HeadFrame
from .render import SynthScene
from .sequence import (
    SynthSequence,
    config_from_source,
    landmarks_for,
    render_params,
    synthesize,
)
from .writer import SynthResult, write_synthetic, write_synthetic_job

__all__ = [
    "NEUTRAL",
    "HeadFrame",
    "SynthConfig",
    "SynthResult",
    "SynthScene",
    "SynthSequence",
    "config_from_source",
    "landmarks_for",
    "render_params",
    "synthesize",
    "write_synthetic",
    "write_synthetic_job",
]
