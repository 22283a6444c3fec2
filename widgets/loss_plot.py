"""Live loss curves of a training run.

:class:`LossHistory` is the state: it collects the named values of
:attr:`talkstudio.core.progress.Progress.losses` against the record's step, and says when it grew.
:class:`LossPlot` is its view (pyqtgraph): one curve per name, log y by default, redrawn at most
every :data:`REDRAW_MS` however fast the records come, with peak-preserving downsampling so a run
of a hundred thousand steps stays quick to draw. On the log axis the steps where a term was 0 (it
had nothing to act on in that step) are left out of its curve instead of plunging to a floor.
The legend sits above the plot, so it never hides a curve: one row, or as few rows as fit the
plot's width (a narrow plot of many terms), the space above the view growing with them. The axes'
numbers stay whole
at any size down to :data:`MIN_HEIGHT`: the bottom axis is as tall as its tick labels and the
plot keeps room on the right for the last label to overhang the view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget

from talkstudio.core.progress import Progress

REDRAW_MS = 100
"""Shortest interval between two redraws of the plot."""
CURVE_COLORS = (
    (240, 90, 90),
    (245, 185, 60),
    (90, 170, 255),
    (110, 215, 120),
    (200, 130, 255),
    (70, 215, 215),
    (255, 140, 200),
    (170, 170, 90),
)
"""Colours of the terms, in the order they first appear (distinct on the dark background)."""
TOTAL_COLOR = (235, 235, 235)
"""Colour of the series named "loss" (the total), drawn a little wider."""
LEGEND_ROW = 15
"""Pixels a legend row takes (its samples overlap by the legend's negative row spacing)."""
LEGEND_GAP = 14
"""Pixels between two legend entries (the legend's spacing and its items' padding)."""
MIN_HEIGHT = 96
"""Smallest height at which the legend row, a view and whole axis numbers fit."""


class LossAxis(pg.AxisItem):
    """Log-scale loss axis labelled at 1, 2 and 5 times powers of ten only (no crowding)."""

    def logTickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        out = []
        for v in values:
            value = 10.0 ** (v * scale)
            mantissa = round(value / 10.0 ** np.floor(np.log10(value) + 1e-9), 3)
            out.append(f"{value:.3g}" if mantissa in (1.0, 2.0, 5.0) else "")
        return out


class LossHistory(QObject):
    """Named scalar series indexed by step, filled from :class:`Progress` records."""

    appended = Signal()
    cleared = Signal()

    def __init__(self, stage: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stage = stage
        """Only records of this stage are kept (None: every stage)."""
        self._steps: dict[str, np.ndarray] = {}
        self._values: dict[str, np.ndarray] = {}
        self._counts: dict[str, int] = {}

    def names(self) -> list[str]:
        return list(self._steps)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps [N], values [N]) of ``name``."""
        n = self._counts.get(name, 0)
        return self._steps[name][:n], self._values[name][:n]

    def add(self, record: Progress) -> None:
        """Append ``record.losses`` at ``record.step`` (records of other stages are ignored)."""
        if (self.stage is not None and record.stage != self.stage) or not record.losses:
            return
        for name, value in record.losses.items():
            self._append(name, float(record.step), float(value))
        self.appended.emit()

    def clear(self) -> None:
        self._steps.clear()
        self._values.clear()
        self._counts.clear()
        self.cleared.emit()

    def _append(self, name: str, step: float, value: float) -> None:
        n = self._counts.get(name, 0)
        if name not in self._steps:
            self._steps[name] = np.empty(256)
            self._values[name] = np.empty(256)
        elif n == len(self._steps[name]):  # amortised doubling
            self._steps[name] = np.resize(self._steps[name], 2 * n)
            self._values[name] = np.resize(self._values[name], 2 * n)
        self._steps[name][n] = step
        self._values[name][n] = value
        self._counts[name] = n + 1


class LossPlot(QWidget):
    """A plot of every series of a :class:`LossHistory`."""

    def __init__(
        self,
        history: LossHistory,
        log_y: bool = True,
        step_label: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.history = history
        self.log_y = log_y
        self.plot = pg.PlotWidget(background=(28, 30, 34), axisItems={"left": LossAxis("left")})
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.2)
        if step_label:
            item.setLabel("bottom", "step")
        item.setLabel("left", "loss")
        item.setLogMode(x=False, y=log_y)
        for axis in ("left", "bottom"):
            item.getAxis(axis).enableAutoSIPrefix(False)
        # whole tick numbers: the bottom axis is as tall as a label plus the tick offset, and
        # the last label (centred on the view's right edge) gets half a wide label of room
        metrics = QFontMetrics(self.font())
        bottom = item.getAxis("bottom")
        bottom.setHeight(metrics.height() + 12 + (metrics.height() + 4 if step_label else 0))
        item.layout.setContentsMargins(2, 2, metrics.horizontalAdvance("000000") // 2 + 2, 2)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.setTitle(" ", size="8pt")  # a row above the view box for the legend
        self.legend = pg.LegendItem(offset=None, labelTextSize="8pt", horSpacing=12, verSpacing=-6)
        self.legend.setParentItem(item)
        self.legend.anchor(itemPos=(1, 0), parentPos=(1, 0), offset=(-6, -4))
        self.curves: dict[str, pg.PlotDataItem] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self.setMinimumSize(240, MIN_HEIGHT)
        self._timer = QTimer(self, singleShot=True, interval=REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        history.appended.connect(self._schedule)
        history.cleared.connect(self._cleared)
        self.redraw()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        """Draw every series now."""
        for name in self.history.names():
            steps, values = self.history.series(name)
            if self.log_y:
                keep = values > 0  # 0 cannot be drawn on a log axis
                steps, values = steps[keep], values[keep]
            curve = self.curves.get(name)
            if curve is None:
                if name == "loss":
                    pen = pg.mkPen(TOTAL_COLOR, width=2.0)
                else:
                    others = sum(1 for n in self.curves if n != "loss")
                    pen = pg.mkPen(CURVE_COLORS[others % len(CURVE_COLORS)], width=1.5)
                curve = self.plot.plot(pen=pen)
                self.curves[name] = curve
                self.legend.addItem(curve, name)
                self.fit_legend()
            curve.setData(steps, values)

    def legend_rows(self) -> int:
        """Rows the legend needs for its names to fit the plot's width (at least 1)."""
        widths = [sample.boundingRect().width() + label.boundingRect().width() + LEGEND_GAP
                  for sample, label in self.legend.items]  # fmt: skip
        room = self.plot.width() - 2 * LEGEND_GAP
        for rows in range(1, len(widths) + 1):
            cols = -(-len(widths) // rows)
            if all(sum(widths[k : k + cols]) <= room for k in range(0, len(widths), cols)):
                return rows
        return max(len(widths), 1)

    def fit_legend(self) -> None:
        """Lay the legend out in :meth:`legend_rows` rows above the view."""
        rows = self.legend_rows()
        self.legend.setColumnCount(max(-(-len(self.curves) // rows), 1))
        # the title row above the view holds the legend: 30 px (pyqtgraph's) take two rows
        self.plot.getPlotItem().layout.setRowFixedHeight(0, max(30, 2 + LEGEND_ROW * rows))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.curves:
            self.fit_legend()

    def _cleared(self) -> None:
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves.clear()
        self.legend.clear()
