"""Log axes show small values as they are; only zeros and non-finite values stand at a floor,
as hollow markers with a label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradsight.drawing import FLOORED_LABEL, log_plot, new_figure, positive
from gradsight.lab.vanishing_depth import _ratio_figure
from gradsight.report import figures
from gradsight.telemetry import History

DECAY = np.logspace(0, -20, 11)  # 1 down to 1e-20


def _lines(ax):
    return [line for line in ax.get_lines() if line.get_label() != FLOORED_LABEL]


def test_positive_keeps_tiny_values_and_hides_what_a_log_axis_cannot_show():
    values = np.array([1e-20, 1e-300, 0.0, -1.0, np.inf, np.nan, 5.0])
    shown = positive(values)
    assert shown[0] == 1e-20 and shown[1] == 1e-300 and shown[-1] == 5.0
    assert np.isnan(shown[2:6]).all()


def test_a_report_series_down_to_1e_20_is_drawn_as_it_is_and_a_zero_is_marked():
    history = History()
    for step, value in enumerate([*DECAY, 0.0]):
        history.log(step, "update/ratio", float(value), layer="fc1")
    ax = figures.update_ratio_figure(history).axes[0]
    (line,) = [line for line in _lines(ax) if line.get_label() == "fc1"]
    np.testing.assert_array_equal(line.get_ydata()[:-1], DECAY)
    assert np.isnan(line.get_ydata()[-1])
    (marker,) = [line for line in ax.get_lines() if line.get_label() == FLOORED_LABEL]
    assert list(marker.get_xdata()) == [len(DECAY)]
    assert marker.get_ydata()[0] == pytest.approx(1e-21)  # a decade below the smallest
    assert marker.get_markerfacecolor() == "none"
    assert ax.get_ylim()[0] < 1e-20


def test_the_vanishing_depth_figure_shows_its_ratio_down_to_1e_20():
    depths = np.arange(1, 12)
    frame = pd.DataFrame(
        {
            "activation": "sigmoid",
            "depth": depths,
            "ratio_init": DECAY,
            "ratio_trained": DECAY,
        }
    )
    ax = _ratio_figure(frame).axes[0]
    drawn = _lines(ax)[0].get_ydata()
    np.testing.assert_allclose(drawn, DECAY, rtol=1e-12)
    assert not any(line.get_label() == FLOORED_LABEL for line in ax.get_lines())


def test_the_floor_label_appears_once_per_axes():
    fig = new_figure(None)
    ax = fig.subplots()
    log_plot(ax, [0, 1, 2], [1.0, 0.0, np.inf], label="a")
    log_plot(ax, [0, 1, 2], [2.0, 0.0, 1.0], label="b")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels.count(FLOORED_LABEL) == 1 and len(ax.get_lines()) == 4
