"""Loss history fed by Progress records, and its live plot."""

from __future__ import annotations

import numpy as np
from conftest import show_widget

from talkstudio.core.progress import Progress
from talkstudio.widgets.loss_plot import TOTAL_COLOR, LossHistory, LossPlot


def test_history_collects_losses_per_name_and_stage(qapp) -> None:
    history = LossHistory(stage="train head")
    grew: list[int] = []
    history.appended.connect(lambda: grew.append(1))
    for step in range(1000):  # past the first buffer of 256: it must grow
        history.add(Progress("train head", step, 1000, losses={"rgb": 1.0 / (step + 1)}))
        if step % 10 == 0:
            history.add(Progress("train head", step, 1000, losses={"eye": step * 0.5}))
    history.add(Progress("train torso", 3, 10, losses={"rgb": 99.0}))  # another stage: ignored
    history.add(Progress("train head", 5, 1000))  # no losses: nothing to add
    steps, values = history.series("rgb")
    np.testing.assert_array_equal(steps, np.arange(1000))
    np.testing.assert_allclose(values, 1.0 / (np.arange(1000) + 1))
    steps, values = history.series("eye")
    np.testing.assert_array_equal(steps, np.arange(0, 1000, 10))
    assert history.names() == ["rgb", "eye"]
    assert len(grew) == 1100


def test_plot_draws_every_series_and_coalesces_redraws(qtbot) -> None:
    history = LossHistory()
    plot = show_widget(qtbot, LossPlot(history), (400, 250))
    for step in range(50):
        losses = {"a": 0.5 + step, "b": 0.0, "eye": 0.1 if step % 3 == 0 else 0.0, "loss": 2.0}
        history.add(Progress("s", step, 50, losses=losses))
    assert plot.curves == {}  # nothing drawn yet: the redraw waits for the timer
    qtbot.waitUntil(lambda: set(plot.curves) == {"a", "b", "eye", "loss"}, timeout=2000)
    x, y = plot.curves["a"].getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(50))
    np.testing.assert_allclose(y, 0.5 + np.arange(50))
    # zeros cannot sit on the log axis: those steps are left out of the curve
    xe, ye = plot.curves["eye"].getOriginalDataset()
    np.testing.assert_array_equal(xe, np.arange(0, 50, 3))
    np.testing.assert_allclose(ye, 0.1)
    assert plot.curves["b"].getOriginalDataset()[0] is None  # all zero: nothing to draw
    # one legend row above the plot, the total drawn in its own colour
    labels = [label.text for _, label in plot.legend.items]
    assert labels == ["a", "b", "eye", "loss"]
    assert plot.legend.columnCount == 4
    assert plot.curves["loss"].opts["pen"].color().getRgb()[:3] == TOTAL_COLOR
    colors = {plot.curves[n].opts["pen"].color().getRgb() for n in ("a", "b", "eye")}
    assert len(colors) == 3
    history.clear()
    assert plot.curves == {}
    assert plot.legend.items == []


def test_axis_numbers_stay_whole_in_a_small_plot(qtbot) -> None:
    from PySide6.QtGui import QFontMetrics

    from talkstudio.widgets.loss_plot import MIN_HEIGHT

    history = LossHistory()
    plot = show_widget(qtbot, LossPlot(history, step_label=False), (300, MIN_HEIGHT))
    for step in range(401):
        history.add(Progress("s", step, 400, losses={"loss": 1.0 / (step + 1)}))
    qtbot.waitUntil(lambda: "loss" in plot.curves, timeout=2000)
    qtbot.wait(50)
    assert plot.height() == MIN_HEIGHT
    item = plot.plot.getPlotItem()
    view = plot.plot.viewport().rect()
    metrics = QFontMetrics(plot.font())
    axis = item.getAxis("bottom").sceneBoundingRect()
    # the bottom axis holds a whole line of numbers and ends inside the widget
    assert axis.height() >= metrics.height() + 8
    assert axis.bottom() <= view.height() + 0.5
    # the last number ("400", centred on the view's right edge) has room on the right
    right = item.getViewBox().sceneBoundingRect().right()
    assert right + metrics.horizontalAdvance("400") / 2 <= view.width()


def test_the_legend_takes_more_rows_instead_of_running_off_a_narrow_plot(qtbot) -> None:
    names = ["smooth_l1", "alpha", "eye", "mouth", "depth_var", "loss"]  # the head's terms
    history = LossHistory()
    for step in range(1, 20):
        history.add(
            Progress("s", step, 20, losses={n: 1.0 / (step + k) for k, n in enumerate(names)})
        )
    rows = {}
    for width in (700, 390):
        plot = show_widget(qtbot, LossPlot(history), (width, 160))
        plot.redraw()
        qtbot.wait(20)
        rows[width] = plot.legend_rows()
        view_top = plot.plot.getPlotItem().vb.sceneBoundingRect().top()
        for sample, label in plot.legend.items:  # every name whole, inside, above the view
            box = label.sceneBoundingRect()
            assert sample.sceneBoundingRect().left() >= 0 and box.right() <= width, (width, box)
            assert box.center().y() < view_top, (width, box, view_top)
    assert rows == {700: 1, 390: 2}
