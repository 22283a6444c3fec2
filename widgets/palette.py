"""Names and colours shared by every view of the edits, so α1/α2/α3 look the same everywhere."""

from __future__ import annotations

from talkstudio.core.edit_state import ALPHA_LABELS as ALPHA_LABELS  # the factors' short labels
from talkstudio.core.edit_state import CHANNEL_LABELS as CHANNEL_LABELS  # every channel's label

ALPHA_COLORS = {
    "left_eye": (64, 156, 255),
    "right_eye": (60, 200, 110),
    "mouth": (255, 128, 48),
}
"""RGB colour of each factor: timeline lane, slider row swatch and its landmark group in 3D."""

CHANNEL_COLORS = {
    **ALPHA_COLORS,
    "brows": (200, 120, 230),
    "blink": (90, 210, 220),
    "head_motion": (230, 200, 80),
}
"""RGB colour of every channel (the α's as above): slider row swatch and timeline lane."""

NEUTRAL_COLOR = (150, 150, 150)
"""Colour of landmarks that no factor edits."""

PLAYHEAD_COLOR = (235, 60, 60)
"""Colour of the timeline playhead."""

WAVEFORM_COLOR = (120, 170, 220)
"""Colour of the audio envelope on the timeline."""
