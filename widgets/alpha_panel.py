"""The edits panel: one row per factor (α1 left eye, α2 right eye, α3 mouth), then "More":
brows, head motion and blinks.

Each factor row has a slider over the channel's range (α 0–2, brows -1–1, head motion 0–2; 100
steps per unit) and a spin box kept in step with it, a keyframe indicator, and buttons to set or
delete the keyframe at the current frame and to reset the channel. The row shows the state's
value at the current frame (interpolated between keyframes). A slider drag sets the value at the
current frame live (one merged undo step per drag); releasing it, or any other finished change,
emits :attr:`AlphaPanel.editCommitted`, which asks for the full render.

The blink row inserts a blink at the current frame, deletes the one there, removes them all, and
sets the rate of the synthesised blinks (per minute; "auto" is the driving track's own choice).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QWidget,
)

from talkstudio.core.blinks import BLINK_RATE_MAX
from talkstudio.core.edit import ALPHA_NAMES, CHANNELS, CURVE_CHANNELS

from .palette import CHANNEL_COLORS, CHANNEL_LABELS
from .state import EditState

STEPS_PER_UNIT = 100
"""Slider steps per unit of a channel: 200 steps over α's [0, 2]."""
ROW_NAMES = (*ALPHA_NAMES, *CURVE_CHANNELS)
"""The channels with a slider row, in panel order."""
TIPS = {
    "brows": "Raise (+) or lower (−) the brows, by up to 0.4 of the subject's eye-brow distance",
    "head_motion": "Amplitude of the head's motion about its mean pose: 0 holds the head still, "
    "1 moves it as the subject did, 2 doubles the motion",
}


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    return button


def _swatch(name: str) -> QLabel:
    r, g, b = CHANNEL_COLORS[name]
    label = QLabel(f"<span style='color:rgb({r},{g},{b})'>■</span> {CHANNEL_LABELS[name]}")
    label.setToolTip(TIPS.get(name, ""))
    return label


class AlphaRow:
    """The controls of one channel with values, laid out on one row of the panel's grid."""

    def __init__(self, name: str, grid: QGridLayout, row: int) -> None:
        self.name = name
        spec = CHANNELS[name]
        self.neutral = spec.neutral
        self.label = _swatch(name)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(round(spec.lo * STEPS_PER_UNIT), round(spec.hi * STEPS_PER_UNIT))
        self.slider.setPageStep(10)
        self.slider.setMinimumWidth(140)
        self.slider.setObjectName(f"slider_{name}")
        self.slider.setToolTip(TIPS.get(name, ""))
        self.spin = QDoubleSpinBox()
        self.spin.setRange(spec.lo, spec.hi)
        self.spin.setDecimals(2)
        self.spin.setSingleStep(0.05)
        self.spin.setKeyboardTracking(False)
        self.key_button = _button("Set key")
        self.key_button.setToolTip("Keyframe the current value at the current frame")
        self.indicator, self.delete_button, self.reset_button = _row_end(
            "Delete the keyframe at the current frame",
            f"Remove every {CHANNEL_LABELS[name]} keyframe: back to {spec.neutral:g} "
            "(as predicted) everywhere",
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


def _row_end(delete_tip: str, reset_tip: str) -> tuple[QLabel, QToolButton, QToolButton]:
    """What ends a row: the indicator of the value's source, then Del key and Reset."""
    indicator = QLabel()
    indicator.setMinimumWidth(86)
    delete, reset = _button("Del key"), _button("Reset")
    delete.setToolTip(delete_tip)
    reset.setToolTip(reset_tip)
    return indicator, delete, reset


class BlinkRow:
    """Insert, delete and reset blinks, and the synthesised blinks' rate, on one grid row."""

    def __init__(self, grid: QGridLayout, row: int) -> None:
        self.label = _swatch("blink")
        self.label.setToolTip("Blinks: inserted at a frame, and synthesised at a rate")
        self.insert_button = _button("Insert blink")
        self.insert_button.setObjectName("insert_blink")
        self.insert_button.setToolTip(
            "Close both eyes for ~0.24 s, fully shut at the current frame (a keyframe on the "
            "blink lane)"
        )
        self.rate = QSpinBox()
        self.rate.setObjectName("blink_rate")
        self.rate.setRange(-1, int(BLINK_RATE_MAX))
        self.rate.setSpecialValueText("auto")
        self.rate.setKeyboardTracking(False)
        self.rate.setToolTip(
            "Synthesised blinks per minute (0: none). Auto: blinks are added only when the "
            "subject's own footage blinks too rarely, every 2–3 s"
        )
        self.indicator, self.delete_button, self.reset_button = _row_end(
            "Delete the blink inserted at the current frame",
            "Remove every inserted blink (the rate stays)",
        )
        grid.addWidget(self.label, row, 0)
        grid.addWidget(self.insert_button, row, 1)
        grid.addWidget(self.rate, row, 2)
        grid.addWidget(self.indicator, row, 3)
        grid.addWidget(self.delete_button, row, 5)
        grid.addWidget(self.reset_button, row, 6)


class AlphaPanel(QWidget):
    """The α rows and the "More" rows (brows, head motion, blinks) viewing an
    :class:`EditState`."""

    valueEdited = Signal(str, float)  # noqa: N815 (Qt signal naming)
    """A live value change while a slider is dragged (factor, value)."""
    editCommitted = Signal(str)  # noqa: N815 (Qt signal naming)
    """A change of the factor is finished (slider released, spin box or button): render fully."""

    def __init__(self, state: EditState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._updating = False
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 6, 4, 6)
        grid.setHorizontalSpacing(8)
        grid.setColumnStretch(1, 1)
        self.rows = {n: AlphaRow(n, grid, i) for i, n in enumerate(ALPHA_NAMES)}
        more = QLabel("More")
        more.setStyleSheet("font-weight: bold")
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        first = len(ALPHA_NAMES)
        grid.addWidget(more, first, 0)
        grid.addWidget(line, first, 1, 1, 6)
        for i, n in enumerate(CURVE_CHANNELS, first + 1):
            self.rows[n] = AlphaRow(n, grid, i)
        self.blink = BlinkRow(grid, first + 1 + len(CURVE_CHANNELS))
        self.blink.insert_button.clicked.connect(self._insert_blink)
        self.blink.delete_button.clicked.connect(lambda _=False: self._delete_key("blink"))
        self.blink.reset_button.clicked.connect(lambda _=False: self._reset("blink"))
        self.blink.rate.valueChanged.connect(self._rate_changed)
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
                    text = "· default"
                    tip = f"no keyframes: {row.neutral:g} (as predicted) everywhere"
                elif frame < keys[0] or frame > keys[-1]:
                    text, tip = "◇ held", "held from the nearest keyframe"
                else:
                    text, tip = "◇ interpolated", "interpolated between keyframes"
                row.indicator.setText(text)
                row.indicator.setToolTip(tip)
                row.delete_button.setEnabled(frame in keys)
                row.reset_button.setEnabled(bool(keys))
            self._refresh_blinks(frame)
        finally:
            self._updating = False

    def _refresh_blinks(self, frame: int) -> None:
        blinks = [f for f, _ in self.state.keyframes("blink")]
        near = [f for f in blinks if abs(f - frame) <= 3]
        row = self.blink
        if frame in blinks:
            row.indicator.setText("◆ blink here")
        elif near:
            row.indicator.setText(f"◇ blink at {near[0]}")
        else:
            row.indicator.setText(f"· {len(blinks)} inserted")
        row.indicator.setToolTip(f"blinks inserted at frames {blinks}" if blinks else "")
        row.delete_button.setEnabled(frame in blinks)
        row.reset_button.setEnabled(bool(blinks))
        rate = self.state.blink_rate
        row.rate.setValue(-1 if rate is None else round(rate))

    def _insert_blink(self) -> None:
        self.state.insert_blink()
        self.editCommitted.emit("blink")

    def _rate_changed(self, value: int) -> None:
        if self._updating:
            return
        self.state.set_blink_rate(None if value < 0 else float(value))
        self.editCommitted.emit("blink")

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
