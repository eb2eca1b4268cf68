"""Every experiment in quick mode: it runs, its central claims hold, its page is complete.

The quick grids are sized so the central claims hold with margin on the default 2 seeds
(checked on 6 seeds where the margin is smallest: initialization's He net, 0.84 to 0.91
test accuracy by step 300 against the 0.7 required, so quick mode gives it 400 steps).
batchnorm-residual and dead-relu train 200 steps in quick mode: on 4 seeds every remedied
net reaches 0.8 (batch norm 0.94, residual 0.89 on average), and the large rate leaves at
least 0.56 of the units dead against the 0.3 required. rnn-vs-lstm keeps 400: at 250 steps
one RNN seed of 4 learns the T = 30 sum (test MSE 0.050; the claim needs every RNN seed
above 0.6 x baseline, 0.1).
"""

import json
import re

import pytest
import torch
from markupsafe import escape

from gradsight.lab import (
    EXPERIMENTS,
    batchnorm_residual,
    hessian_lr,
    lamb_large_batch,
    list_experiments,
    sigmoid_product,
    zero_centered,
)

# Each experiment trains its quick grid (seconds to half a minute).
pytestmark = pytest.mark.slow

NAMES = [
    "sigmoid-product",
    "vanishing-depth",
    "initialization",
    "batchnorm-residual",
    "dead-relu",
    "zero-centered",
    "rnn-vs-lstm",
    "exploding-clipping",
    "optimizers",
    "adagrad-sparse",
    "adam-bias-correction",
    "learning-rate",
    "saddle",
    "pretraining",
    "hessian-lr",
    "lamb-large-batch",
]
# Central claims the measurements contradict, reported "not held" on purpose. If one of them
# starts to hold, the test below says so and this list (and the README) must be updated.
CONTRADICTED = {
    # The theory's natural step 1/lambda_max is beaten by a constant lr near the edge of
    # stability (~2/lambda_max): final MSE 0.021 vs 0.014 (quick mode, 2 seeds).
    ("hessian-lr", hessian_lr.INVERSE_SHARPNESS.name),
    # Each rule at its best rate at every batch, LAMB does not beat Adam at full batch on this
    # net: test accuracy 0.946 against 0.949 (quick mode, 2 seeds).
    ("lamb-large-batch", lamb_large_batch.LAMB_BEATS_ADAM.name),
}


def test_registry_lists_the_experiments_with_questions():
    assert list(EXPERIMENTS)[: len(NAMES)] == NAMES
    for name, question in list_experiments():
        assert question.endswith("?"), name
        assert re.search(r"\b(19|20)\d\d\b", question), f"{name}: the question cites no paper"


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_central_claims_hold_in_quick_mode(quick_lab, name):
    claims = quick_lab[name].claims
    central = [c for c in claims if c.central]
    assert central, f"{name} marks no central claim"
    for claim in central:
        contradicted = (name, claim.name) in CONTRADICTED
        assert claim.held != contradicted, f"{claim.statement}: {claim.verdict}"
    assert all(c.verdict and c.numbers for c in claims)


def _claim(result, spec):
    """The claim of `result` judged from `spec`."""
    return next(c for c in result.claims if c.name == spec.name)


@pytest.mark.parametrize("name", ["sigmoid-product"])
def test_a_claim_that_fails_is_reported_not_hidden(quick_lab, name):
    never = _claim(quick_lab[name], sigmoid_product.NEVER_ABOVE)
    # -ln(product of 50 U(0,1)) ~ Gamma(50, 1): about 11% of draws exceed 1e-18.
    assert not never.held
    assert 0.05 < never.numbers[f"fraction above {sigmoid_product.THRESHOLD:g}"].mean < 0.2


@pytest.mark.parametrize("name", ["batchnorm-residual"])
def test_an_unnormalised_relu_resnet_fails_its_claim(quick_lab, name):
    residual = _claim(quick_lab[name], batchnorm_residual.RELU_RESIDUAL)
    assert not residual.held  # an un-normalised ReLU resnet with He init explodes


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_every_claim_shows_its_control_and_every_failure_a_second_look(quick_lab, name):
    result = quick_lab[name]
    page = result.page.read_text(encoding="utf-8")
    for claim in result.claims:
        assert claim.control.startswith("varied: ") and "; fixed: " in claim.control
        assert f"Control: {escape(claim.control)}" in page
        assert bool(claim.second_look) == (not claim.held), claim.name
        if claim.second_look:
            assert str(escape(claim.second_look)) in page
            assert "{" not in claim.second_look, claim.second_look  # every field filled
    assert page.count("Second look:") == sum(not c.held for c in result.claims)


def test_zero_centered_controls_change_only_the_mean():
    tasks = zero_centered.input_tasks()
    unit, centred = tasks["unit"].x_train, tasks["unit_centred"].x_train
    assert unit.min() >= 0 and unit.max() <= 1
    assert torch.allclose(centred.mean(dim=0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(centred.var(dim=0), unit.var(dim=0), atol=1e-5)
    assert torch.allclose(tasks["unit_centred"].x_test + unit.mean(dim=0), tasks["unit"].x_test)


@pytest.mark.parametrize("name", ["zero-centered"])
def test_zero_centered_measures_every_condition_at_its_best_rate(quick_lab, name):
    result = quick_lab[name]
    sweep, runs = result.tables["sweep"], result.tables["runs"]
    best = zero_centered.best_rates(sweep)
    assert set(best) == set(zero_centered.CONDITIONS)
    mean = sweep.groupby(["activation", "inputs", "lr"])["final_loss"].mean()
    for (a, i), rate in best.items():
        assert mean.loc[(a, i)].min() == mean.loc[(a, i, rate)]
        assert set(runs[(runs.activation == a) & (runs.inputs == i)].lr) == {rate}
    assert len(runs) == len(zero_centered.CONDITIONS) * len(set(runs.seed))


@pytest.mark.parametrize("name", ["lamb-large-batch"])
def test_lamb_large_batch_tunes_each_rule_at_each_batch(quick_lab, name):
    result = quick_lab[name]
    sweep, runs = result.tables["sweep"], result.tables["runs"]
    assert set(sweep.groupby(["batch", "optimizer"]).lr.nunique()) == {
        len(lamb_large_batch.QUICK_RATES)
    }
    mean = sweep.groupby(["batch", "optimizer", "lr"])["train_loss"].mean()
    for (batch, rule), part in runs.groupby(["batch", "optimizer"]):
        (rate,) = set(part.lr)
        assert mean.loc[(batch, rule)].min() == mean.loc[(batch, rule, rate)]
    assert {c.name for c in result.claims} >= {
        lamb_large_batch.RATE_MOVES_LESS.name,
        lamb_large_batch.LAMB_LOSES_LESS.name,
    }


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_page_is_self_contained_with_its_figures(quick_lab, name):
    result = quick_lab[name]
    folder = quick_lab.config.out_dir / name
    assert result.page == folder / "index.html"
    page = result.page.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(result.figures) >= 2
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert str(escape(EXPERIMENTS[name].question)) in page
    assert page.count("not held") == sum(not c.held for c in result.claims)
    for stem in result.figures:
        assert (folder / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert [c["held"] for c in saved["claims"]] == [c.held for c in result.claims]
    assert saved["mode"] == "quick" and set(saved["tables"]) == set(result.tables)


def test_run_all_writes_the_index(small_lab):
    config, results = small_lab
    assert len(results) >= 2
    index = (config.out_dir / "index.html").read_text(encoding="utf-8")
    for name in results:
        assert f'href="{name}/index.html"' in index
    assert "https://" not in index and "http://" not in index
