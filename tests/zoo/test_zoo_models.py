"""The zoo's machinery: scenarios are well-formed, every family trains, and every injected
pathology is physically there, measured directly (forward hooks, gradient norms, losses),
never through gradsight's diagnosis."""

import json
import math

import pytest
import torch

from gradsight.diagnosis import FINDING_KINDS
from gradsight.zoo import (
    FAMILIES,
    SCENARIOS,
    ZooReport,
    ZooResult,
    bert,
    gpt2,
    judge,
    mnist_cnn,
    resnet,
    run_scenario,
    select,
    word_lm,
)
from gradsight.zoo.base import dead_fraction

pytestmark = pytest.mark.usefixtures("one_thread")


def build(scenario_id: str):
    scenario = SCENARIOS[scenario_id]
    module = {"gpt2": gpt2, "bert": bert, "mnist_cnn": mnist_cnn, "resnet": resnet}.get(
        scenario.family, word_lm
    )
    return module.build(0, **scenario.settings)


def train(setup, steps: int, measure=None) -> list[float]:
    """Run the family's own loop; `measure(setup)` after every update (optional)."""
    losses = []

    def after_step(loss):
        losses.append(float(loss))
        if measure is not None:
            measure(setup)

    setup.train(steps, after_step)
    return losses


# ---- the table -----------------------------------------------------------------------------


def test_table_is_well_formed():
    ids = [s.id for s in SCENARIOS.values()]
    assert len(ids) == len(set(ids)) >= 24
    for scenario in SCENARIOS.values():
        assert scenario.family in FAMILIES and scenario.id.startswith(scenario.family + "/")
        assert set(scenario.expected) <= set(FINDING_KINDS), scenario.id
        assert scenario.description and 0 < scenario.quick_steps < scenario.steps
    for family in FAMILIES:  # each family has a healthy run and at least two pathologies
        runs = [s for s in SCENARIOS.values() if s.family == family]
        assert any(s.healthy for s in runs) and sum(not s.healthy for s in runs) >= 2


def test_select_by_glob_and_substring():
    assert {s.family for s in select("gpt2/*")} == {"gpt2"}
    assert all(s.healthy for s in select("*healthy*"))
    assert [s.id for s in select("resnet/no_bn")] == ["resnet/no_bn"]
    with pytest.raises(KeyError):
        select("nothing/*")


def test_judge_and_summary():
    assert judge([], [("covariate_shift", "info")])
    assert not judge([], [("loss_plateau", "warning")])
    assert judge({"dead_units"}, [("vanishing_gradients", "critical"), ("dead_units", "warning")])
    assert not judge({"dead_units"}, [("dead_units", "info")])  # info names nothing
    assert not judge({"dead_units"}, [("loss_plateau", "warning"), ("dead_units", "info")])
    results = [
        ZooResult("a/healthy", "a", (), [("loss_plateau", "warning")], right=False),
        ZooResult("a/sick", "a", ("dead_units",), [("dead_units", "critical")], right=True),
        ZooResult("a/other", "a", ("non_finite",), [], right=False),
    ]
    summary = ZooReport(results).summary()
    assert summary["recall"] == 0.5 and summary["false_alarm_rate"] == 1.0
    assert summary["precision"] == 0.5 and summary["warnings"] == 2
    assert (
        "| a/sick | dead_units | dead_units (critical) | right |" in ZooReport(results).markdown()
    )


# ---- every family trains -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_and_steps(family):
    healthy = f"{family}/healthy"
    setup = build(healthy if healthy in SCENARIOS else "word_lm/lstm_healthy")
    before = [p.detach().clone() for p in setup.model.parameters()]
    losses = train(setup, 2)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    after = list(setup.model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert (setup.optimizer is None) == (family == "word_lm")  # the example has no optimizer


@pytest.mark.parametrize("scenario_id", ["mnist_cnn/healthy", "resnet/healthy", "gpt2/healthy"])
def test_healthy_quick_run_learns(scenario_id):
    losses = train(build(scenario_id), SCENARIOS[scenario_id].quick_steps)
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5


def test_runner_records_a_quick_run():
    scenario = SCENARIOS["mnist_cnn/healthy"]
    result = run_scenario(scenario, quick=True, overhead=True)
    assert result.steps == scenario.quick_steps and result.train_s > 0
    assert result.loss_end < result.loss_start
    assert result.probe["val_accuracy"] > 0.1
    assert result.overhead["identical_losses"]  # watching does not change training
    json.dumps(result.to_dict(), allow_nan=False)


# ---- the pathologies are physically there --------------------------------------------------


def test_dead_relu_cnn_has_every_unit_off():
    setup = build("mnist_cnn/dead_relu")
    train(setup, 5)
    x = mnist_cnn.digits_images(0)[2]
    for name, pre in mnist_cnn.unit_activity(setup.model, x).items():
        assert dead_fraction(pre) > 0.9, name


def test_adadelta_lr_blowup_spikes_then_kills_relus():
    setup = build("mnist_cnn/lr_blowup")
    losses = train(setup, 30)
    assert max(losses) > 2 * math.log(10)
    pre = mnist_cnn.unit_activity(setup.model, mnist_cnn.digits_images(0)[2])
    assert dead_fraction(pre["conv2"]) > 0.9 and dead_fraction(pre["fc1"]) > 0.9


def test_sigmoid_cnn_is_saturated():
    setup = build("mnist_cnn/sigmoid_saturated")
    pre = mnist_cnn.unit_activity(setup.model, mnist_cnn.digits_images(0)[2])
    assert mnist_cnn.saturated_fraction(pre["conv2"]) > 0.5
    assert mnist_cnn.saturated_fraction(pre["fc1"]) > 0.5


def test_rnn_without_clipping_explodes():
    norms = []

    def measure(setup):  # the gradient the update just used: nothing clipped it
        grads = [p.grad for p in setup.model.parameters() if p.grad is not None]
        norms.append(float(torch.nn.utils.get_total_norm(grads)))

    train(build("word_lm/rnn_relu_no_clip"), 12, measure)
    assert not all(math.isfinite(n) for n in norms) or max(norms) > 1e3


def test_tanh_rnn_gradient_vanishes_over_time():
    data = torch.randint(80, (70, 10), generator=torch.Generator().manual_seed(0))
    ratios = {}
    for scenario_id in ("word_lm/rnn_tanh_long_bptt", "word_lm/lstm_healthy"):
        flow = word_lm.temporal_gradients(build(scenario_id).model, data)  # (T,)
        ratios[scenario_id] = float(flow[35] / flow[-1])  # 35 steps back vs the last step
    assert ratios["word_lm/rnn_tanh_long_bptt"] < 1e-6
    assert ratios["word_lm/rnn_tanh_long_bptt"] < ratios["word_lm/lstm_healthy"] / 10


def test_gpt2_bad_init_collapses_attention():
    bad, good = build("gpt2/bad_init").probe(), build("gpt2/healthy").probe()
    assert bad["attn_max_prob"] > 0.8 > 0.2 > good["attn_max_prob"]
    assert bad["val_loss"] > 2 * bad["uniform_loss"]
    assert bad["grad_norm"] > 10 * good["grad_norm"]


def test_gpt2_without_layernorm_blows_up():
    setup = build("gpt2/no_layernorm")
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in setup.model.modules())
    losses = train(setup, 40)
    assert not all(math.isfinite(v) for v in losses) or max(losses) > 1e3


def test_gpt2_huge_lr_spikes_the_loss():
    losses = train(build("gpt2/lr_much_too_high"), 20)
    assert max(losses) > 2 * math.log(64)


def test_bert_bad_init_saturates_the_pooler():
    bad, good = build("bert/bad_init").probe(), build("bert/healthy").probe()
    assert bad["pooler_saturated"] > 0.5 and good["pooler_saturated"] < 0.1
    assert bad["grad_norm"] > 100 * good["grad_norm"]


def test_resnet_plain_deep_stack_loses_the_signal():
    setup = build("resnet/plain_deep")
    out = resnet.stage_outputs(setup.model, resnet.digits_images(0, size=16)[2][:64])
    rms = {name: float(v.square().mean().sqrt()) for name, v in out.items()}
    assert rms["layer4"] < 1e-3 * rms["relu"]  # the stem's output against the last stage's


def test_resnet_without_bn_spikes_then_dies():
    setup = build("resnet/no_bn")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in setup.model.modules())
    losses = train(setup, 30)
    assert max(losses) > 2 * math.log(10)


@pytest.mark.parametrize(
    ("low", "healthy"),
    [("gpt2/lr_too_low", "gpt2/healthy"), ("word_lm/lr_too_low", "word_lm/lstm_healthy")],
)
def test_tiny_learning_rate_barely_moves_the_loss(low, healthy):
    def relative_drop(losses):
        start, end = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
        return (start - end) / start

    assert relative_drop(train(build(low), 60)) < 0.04
    assert relative_drop(train(build(healthy), 60)) > 0.08
