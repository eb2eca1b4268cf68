"""gradsight's diagnosis on a quick subset of the zoo: full-length runs of the cheapest
scenarios, healthy and pathological, from each family (the whole zoo runs from
benchmarks/zoo.py)."""

import pytest

pytest.importorskip("transformers")
from gradsight.zoo import run_scenario, select

SUBSET = [
    "mnist_cnn/healthy",
    "mnist_cnn/dead_relu",
    "gpt2/healthy",
    "gpt2/lr_too_high",
    "word_lm/lstm_healthy",
    "word_lm/rnn_relu_no_clip",
]


@pytest.mark.slow
@pytest.mark.parametrize("scenario_id", SUBSET, ids=SUBSET)
def test_the_zoo_run_is_diagnosed_rightly(scenario_id, one_thread):
    (scenario,) = select(scenario_id)
    result = run_scenario(scenario)
    assert result.error is None, result.error
    assert result.right, (scenario.expected, result.findings)
