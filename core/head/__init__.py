"""Stage 2 head (paper Sec. IV-C): encodings, field, renderer, trainer.

Building blocks stack one way: :mod:`.hashgrid`/:mod:`.encoding` (position) and
:mod:`.landmark_encoding` (Eq. 7, 8a, 8b) -> :mod:`.field` (Eq. 6) -> :mod:`.rays`,
:mod:`.occupancy`, :mod:`.renderer` (Eq. 4-5) and :mod:`.edit_render` -> :mod:`.train` (Eq. 9)
and :mod:`.evaluate`. :class:`HeadModel` is what the rest of the program loads.
"""

from .config import HeadConfig
from .edit_render import EditRenderer
from .evaluate import HeadReport, evaluate_head
from .model import HeadModel
from .train import HeadTrainResult, train_head

__all__ = [
    "EditRenderer",
    "HeadConfig",
    "HeadModel",
    "HeadReport",
    "HeadTrainResult",
    "evaluate_head",
    "train_head",
]
