"""`watch.log` takes Python numbers, numpy scalars, 0-d arrays and one-element tensors."""

import numpy as np
import pytest
import torch

import gradsight as gs


def _watch():
    return gs.watch(torch.nn.Linear(2, 1))


@pytest.mark.parametrize(
    "value",
    [np.float32(0.5), np.float64(0.5), np.float16(0.5), np.int64(3), np.array(0.5), np.array(7)],
    ids=["float32", "float64", "float16", "int64", "0d-float", "0d-int"],
)
def test_numpy_scalars_are_logged_as_floats(value):
    watch = _watch()
    watch.log(loss=value)
    expected = float(np.asarray(value).item())
    assert watch.latest["loss"] == expected
    assert type(watch.latest["loss"]) is float
    rows = watch.history.series("loss")
    assert rows.tolist() == [expected]
    watch.close()


@pytest.mark.parametrize(
    "value",
    [np.array([0.5, 1.0]), np.array([0.5]), np.bool_(True), True, "0.5", np.array("x")],
    ids=["1d-array", "1-element-1d-array", "np-bool", "bool", "str", "0d-str"],
)
def test_other_values_are_rejected_with_the_name(value):
    watch = _watch()
    with pytest.raises(ValueError, match=r"watch\.log: 'loss' must be"):
        watch.log(loss=value)
    watch.close()


def test_a_nonfinite_numpy_loss_is_caught():
    watch = gs.watch(torch.nn.Linear(2, 1), on_nonfinite="stop")
    watch.log(loss=np.float32("nan"))
    assert watch.stopped
    watch.close()
