"""Standard icons on the dark theme: dark glyphs are repainted light, coloured icons kept."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QStyle

from talkstudio.widgets.icons import GLYPH_COLOR, GLYPH_DISABLED, _rgba, is_dark_glyph, themed_icon

SP = QStyle.StandardPixmap


def _mean_opaque(icon: QIcon, mode: QIcon.Mode = QIcon.Mode.Normal) -> np.ndarray:
    rgba = _rgba(icon.pixmap(QSize(24, 24), mode))
    return rgba[rgba[..., 3] > 128][:, :3].mean(axis=0)  # [3]


def test_dark_glyphs_become_light_and_dim_when_disabled(qapp) -> None:
    qapp.setStyle("Fusion")
    style = qapp.style()
    for which in (SP.SP_MediaPlay, SP.SP_MediaPause, SP.SP_ArrowBack, SP.SP_MediaSeekForward):
        original = style.standardIcon(which)
        assert is_dark_glyph(original)  # Fusion draws these near-black
        icon = themed_icon(style, which)
        assert not is_dark_glyph(icon)
        light = GLYPH_COLOR.getRgb()[:3]
        dim = GLYPH_DISABLED.getRgb()[:3]
        np.testing.assert_allclose(_mean_opaque(icon), light, atol=6)
        np.testing.assert_allclose(_mean_opaque(icon, QIcon.Mode.Disabled), dim, atol=6)
        # the same glyph: the opaque pixels are where they were
        a = _rgba(original.pixmap(QSize(24, 24)))[..., 3] > 128
        b = _rgba(icon.pixmap(QSize(24, 24)))[..., 3] > 128
        assert np.mean(a == b) > 0.97


def test_coloured_icons_are_kept(qapp) -> None:
    qapp.setStyle("Fusion")
    style = qapp.style()
    for which in (SP.SP_DialogOpenButton, SP.SP_DialogSaveButton, SP.SP_DirOpenIcon):
        original = style.standardIcon(which)
        icon = themed_icon(style, which)
        np.testing.assert_array_equal(
            _rgba(icon.pixmap(QSize(24, 24))), _rgba(original.pixmap(QSize(24, 24)))
        )
