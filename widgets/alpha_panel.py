"""The α panel: one row per factor (α1 left eye, α2 right eye, α3 mouth).

Each row has a slider 0–2 (200 steps) and a spin box kept in step with it, a keyframe indicator,
and buttons to set or delete the keyframe at the current frame and to reset the factor. The row
shows the state's value at the current frame (interpolated between keyframes). A slider drag
sets the value at the current frame live (one merged undo step per drag); releasing it, or any
other finished change, emits :attr:`AlphaPanel.editCommitted`, which asks for the full render.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QSlider,
    QToolButton,
    QWidget,
)

from talkstudio.core.edit import ALPHA_MAX, ALPHA_MIN, ALPHA_NAMES

from .palette import ALPHA_COLORS, ALPHA_LABELS
from .state import EditState

STEPS_PER_UNIT = 100
"""Slider steps per unit of α: 200 steps over [0, 2]."""


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    return button


class AlphaRow:
    """The controls of one factor, laid out on one row of the panel's grid."""

    def __init__(self, name: str, grid: QGridLayout, row: int) -> None:
        self.name = name
        r, g, b = ALPHA_COLORS[name]
        self.label = QLabel(f"<span style='color:rgb({r},{g},{b})'>■</span> {ALPHA_LABELS[name]}")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(ALPHA_MIN * STEPS_PER_UNIT), int(ALPHA_MAX * STEPS_PER_UNIT))
        self.slider.setPageStep(10)
        self.slider.setMinimumWidth(140)
        self.slider.setObjectName(f"slider_{name}")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(ALPHA_MIN, ALPHA_MAX)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.05)
        self.spin.setKeyboardTracking(False)
        self.indicator = QLabel()
        self.indicator.setMinimumWidth(86)
        self.key_button = _button("Set key")
        self.key_button.setToolTip("Keyframe the current value at the current frame")
        self.delete_button = _button("Del key")
        self.delete_button.setToolTip("Delete the keyframe at the current frame")
        self.reset_button = _button("Reset")
        self.reset_button.setToolTip(
            f"Remove every {ALPHA_LABELS[name]} keyframe: back to 1 (as predicted) everywhere"
        )
        widgets = (
            self.label,
            self.slider,
            self.spin,
            self.indicator,
            self.key_button,
            self.delete_button,
            self.reset_button,
        )
        for col, w in enumerate(widgets):
            grid.addWidget(w, row, col)


class AlphaPanel(QWidget):
    """Three α rows viewing an :class:`EditState`."""

    valueEdited = Signal(str, float)  # noqa: N815 (Qt signal naming)
    """A live value change while a slider is dragged (factor, value)."""
    editCommitted = Signal(str)  # noqa: N815 (Qt signal naming)
    """A change of the factor is finished (slider released, spin box or button): render fully."""

    def __init__(self, state: EditState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._updating = False
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(8)
        grid.setColumnStretch(1, 1)
        self.rows = {n: AlphaRow(n, grid, i) for i, n in enumerate(ALPHA_NAMES)}
        for name, row in self.rows.items():
            row.slider.valueChanged.connect(lambda v, n=name: self._slider_moved(n, v))
            row.slider.sliderReleased.connect(lambda n=name: self._slider_released(n))
            row.spin.valueChanged.connect(lambda v, n=name: self._spin_changed(n, v))
            row.key_button.clicked.connect(lambda _=False, n=name: self._set_key(n))
            row.delete_button.clicked.connect(lambda _=False, n=name: self._delete_key(n))
            row.reset_button.clicked.connect(lambda _=False, n=name: self._reset(n))
        state.alphasChanged.connect(self.refresh)
        state.frameChanged.connect(self.refresh)
        state.keyframesChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the state's values and keyframes at the current frame."""
        self._updating = True
        try:
            frame = self.state.frame
            for name, row in self.rows.items():
                value = self.state.value(name)
                row.slider.setValue(round(value * STEPS_PER_UNIT))
                row.spin.setValue(value)
                keys = [f for f, _ in self.state.keyframes(name)]
                if frame in keys:
                    text, tip = "◆ keyframe", "a keyframe at this frame"
                elif not keys:
                    text, tip = "· default", "no keyframes: 1 (as predicted) everywhere"
                elif frame < keys[0] or frame > keys[-1]:
                    text, tip = "◇ held", "held from the nearest keyframe"
                else:
                    text, tip = "◇ interpolated", "interpolated between keyframes"
                row.indicator.setText(text)
                row.indicator.setToolTip(tip)
                row.delete_button.setEnabled(frame in keys)
                row.reset_button.setEnabled(bool(keys))
        finally:
            self._updating = False

    def _slider_moved(self, name: str, steps: int) -> None:
        if self._updating:
            return
        value = steps / STEPS_PER_UNIT
        slider = self.rows[name].slider
        if slider.isSliderDown():
            self.state.set_value_live(name, value)
            self.valueEdited.emit(name, value)
        else:  # keyboard, page step or wheel: a finished change
            self.state.set_value(name, value)
            self.editCommitted.emit(name)

    def _slider_released(self, name: str) -> None:
        self.state.end_live_edit()
        self.editCommitted.emit(name)

    def _spin_changed(self, name: str, value: float) -> None:
        if self._updating:
            return
        self.state.set_value(name, value)
        self.editCommitted.emit(name)

    def _set_key(self, name: str) -> None:
        self.state.set_value(name, self.state.value(name))
        self.editCommitted.emit(name)

    def _delete_key(self, name: str) -> None:
        if self.state.has_keyframe(name):
            self.state.delete_keyframe(name, self.state.frame)
            self.editCommitted.emit(name)

    def _reset(self, name: str) -> None:
        self.state.reset(name)
        self.editCommitted.emit(name)
