"""Loss history fed by Progress records, and its live plot."""

from __future__ import annotations

import numpy as np
import pytest

from talkstudio.core.progress import Progress
from talkstudio.widgets.loss_plot import LOG_FLOOR, LossHistory, LossPlot


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
    plot = LossPlot(history)
    qtbot.addWidget(plot)
    plot.resize(400, 250)
    plot.show()
    for step in range(50):
        history.add(Progress("s", step, 50, losses={"a": 0.5 + step, "b": 0.0}))
    assert plot.curves == {}  # nothing drawn yet: the redraw waits for the timer
    qtbot.waitUntil(lambda: set(plot.curves) == {"a", "b"}, timeout=2000)
    x, y = plot.curves["a"].getOriginalDataset()
    np.testing.assert_array_equal(x, np.arange(50))
    np.testing.assert_allclose(y, 0.5 + np.arange(50))
    _, yb = plot.curves["b"].getOriginalDataset()
    assert np.all(yb == pytest.approx(LOG_FLOOR))  # zeros are lifted for the log axis
    history.clear()
    assert plot.curves == {}
