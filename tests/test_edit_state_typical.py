"""The edit model shows α > 1 opening a closed mouth the way the engine renders it."""

from __future__ import annotations

import numpy as np
from conftest import schematic_face

from talkstudio.core.edit import OPEN_FLOOR, TypicalOpening, apply_alphas
from talkstudio.core.edit_state import EditModel
from talkstudio.core.landmarks import mouth_opening


def test_edited_landmarks_open_a_closed_mouth_with_the_typical_opening() -> None:
    speaking = np.stack([schematic_face(0.12) for _ in range(10)])  # the subject's reference
    typical = TypicalOpening.of_track(speaking)
    track = np.stack([schematic_face(0.0), schematic_face(0.12)])  # a closed, an open frame
    model = EditModel()
    model.set_track(track, typical)
    model.set_keyframe("mouth", 0, 2.0)
    shown = model.edited_landmarks(0)
    assert shown is not None
    np.testing.assert_allclose(shown, apply_alphas(track[0], (1, 1, 2), typical))
    assert mouth_opening(shown) > 0.9 * OPEN_FLOOR * mouth_opening(speaking[0])
    # Without the subject's typical opening the closed mouth stays shut.
    model.set_track(track)
    assert mouth_opening(model.edited_landmarks(0)) < 1e-6
    model.set_track(None, typical)  # clearing the track forgets it too
    model.set_track(track)
    assert mouth_opening(model.edited_landmarks(0)) < 1e-6
