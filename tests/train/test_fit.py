import math

import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.telemetry import History, read_run
from gradsight.train import Callback, penalty


@pytest.fixture(scope="module")
def spirals():
    return gs.data.load("spirals", seed=0)


@pytest.fixture(scope="module")
def digits():
    return gs.data.load("digits", seed=0)


def small_net(task, seed=0, hidden=32):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(task.input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, task.output_size)
    )


def test_adam_drives_the_spirals_loss_well_below_its_start(spirals):
    result = gs.fit(
        small_net(spirals, hidden=64), spirals, optimizer="adam", lr=1e-2, steps=400, batch_size=64
    )
    loss = result.history.series("loss")
    assert loss.iloc[-20:].mean() < 0.5 * loss.iloc[0]
    assert result.metrics["train_loss"] < 0.5 * loss.iloc[0]
    assert result.metrics["steps"] == 400 and not result.metrics["diverged"]


@pytest.mark.slow
def test_relu_mlp_learns_digits_and_a_deep_sigmoid_mlp_with_sgd_does_not(digits):
    relu = gs.models.mlp(64, 10, depth=3, width=64, activation="relu", init="he_normal", seed=0)
    healthy = gs.fit(relu, digits, optimizer="adam", lr=1e-3, steps=600, batch_size=64)
    assert healthy.metrics["test_accuracy"] > 0.90

    sigmoid = gs.models.mlp(
        64, 10, depth=10, width=64, activation="sigmoid", init="xavier_uniform", seed=0
    )
    failing = gs.fit(sigmoid, digits, optimizer="sgd", lr=0.1, steps=600, batch_size=64)
    assert failing.metrics["test_accuracy"] < 0.5  # far below: chance is 0.1


def test_same_seed_same_losses_and_global_rng_untouched(spirals):
    def run():
        return (
            gs.fit(
                small_net(spirals),
                spirals,
                optimizer="sgd",
                lr=0.1,
                steps=30,
                batch_size=32,
                seed=5,
            )
            .history.series("loss")
            .tolist()
        )

    first = run()
    state = torch.get_rng_state()
    second = run()
    assert first == second
    assert torch.equal(torch.get_rng_state(), state)


def test_seed_changes_the_batch_order(spirals):
    losses = [
        gs.fit(small_net(spirals), spirals, lr=0.1, steps=5, batch_size=16, seed=seed)
        .history.series("loss")
        .tolist()
        for seed in (0, 1)
    ]
    assert losses[0] != losses[1]


def test_full_batch_is_gradient_descent_on_the_whole_set(spirals):
    model = small_net(spirals)
    reference = small_net(spirals)
    gs.fit(model, spirals, optimizer="sgd", lr=0.5, steps=1)
    x, y = spirals.split("train")
    spirals.loss_fn(reference(x), y).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.5 * p.grad
    for trained, expected in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(trained, expected, rtol=0, atol=1e-6)


def test_l2_penalty_equals_sgd_weight_decay_but_not_adamw_decay(spirals):
    def weights(**kwargs):
        model = small_net(spirals)
        gs.fit(model, spirals, steps=10, batch_size=64, lr=0.1, **kwargs)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    torch.testing.assert_close(weights(l2=0.1), weights(weight_decay=0.1), rtol=1e-5, atol=1e-6)
    adam_l2 = weights(optimizer="adam", l2=0.1)
    adamw = weights(optimizer="adamw", weight_decay=0.1)
    assert (adam_l2 - adamw).abs().max() > 1e-4


def test_penalty_formula():
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(3.0)
    assert penalty(model, l1=0.5, l2=0.0).item() == pytest.approx(0.5 * 6)
    assert penalty(model, l1=0.0, l2=0.2).item() == pytest.approx(0.1 * 14)
    assert penalty(model, 0.0, 0.0) is None


class GradNormProbe(Callback):
    def __init__(self):
        self.norms = []

    def on_step_end(self, state):
        grads = [p.grad.flatten() for p in state.model.parameters()]
        self.norms.append(torch.cat(grads).norm().item())


def test_clip_norm_bounds_the_global_gradient_norm(spirals):
    probe = GradNormProbe()
    gs.fit(small_net(spirals), spirals, lr=0.1, steps=10, clip_norm=0.01, callbacks=[probe])
    assert max(probe.norms) == pytest.approx(0.01, rel=1e-4)


def test_clip_value_bounds_each_element(spirals):
    class MaxAbs(Callback):
        peak = 0.0

        def on_step_end(self, state):
            self.peak = max(
                self.peak, max(p.grad.abs().max().item() for p in state.model.parameters())
            )

    probe = MaxAbs()
    gs.fit(small_net(spirals), spirals, lr=0.1, steps=5, clip_value=1e-3, callbacks=[probe])
    assert probe.peak == pytest.approx(1e-3)


def test_epochs_become_steps(spirals):
    result = gs.fit(small_net(spirals), spirals, epochs=2, batch_size=100, lr=0.1)
    assert result.metrics["steps"] == 2 * (len(spirals.x_train) // 100)


def test_divergence_stops_training_and_is_reported(spirals):
    result = gs.fit(small_net(spirals), spirals, optimizer="sgd", lr=1e6, steps=2000)
    assert result.metrics["diverged"]
    assert result.metrics["steps"] < 2000
    assert not math.isfinite(result.history.last("loss"))


def test_eval_every_logs_test_metrics(spirals):
    result = gs.fit(small_net(spirals), spirals, lr=0.1, steps=30, eval_every=10)
    assert result.history.series("test/accuracy").index.tolist() == [9, 19, 29]
    assert result.history.last("test/accuracy") == result.metrics["test_accuracy"]


def test_a_callback_can_stop_training(spirals):
    class StopAt(Callback):
        def on_step_end(self, state):
            state.stop = state.step == 6

    result = gs.fit(small_net(spirals), spirals, lr=0.1, steps=100, callbacks=[StopAt()])
    assert result.metrics["steps"] == 7


def test_run_dir_holds_run_json_and_the_history(tmp_path, spirals):
    result = gs.fit(small_net(spirals), spirals, lr=0.1, steps=120, run_dir=tmp_path / "run")
    info = read_run(tmp_path / "run")
    assert info["status"] == "finished"
    assert info["config"]["optimizer"] == "sgd" and info["config"]["task"]["name"] == "spirals"
    assert info["metrics"]["steps"] == 120
    loaded = History.load(tmp_path / "run")
    assert loaded.series("loss").tolist() == result.history.series("loss").tolist()
    assert len(list((tmp_path / "run" / "metrics").glob("part-*.parquet"))) >= 3


def test_interrupted_run_is_marked_and_keeps_what_was_logged(tmp_path, spirals):
    class CtrlC(Callback):
        def on_step_end(self, state):
            if state.step == 120:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gs.fit(
            small_net(spirals), spirals, lr=0.1, steps=500, run_dir=tmp_path, callbacks=[CtrlC()]
        )
    assert read_run(tmp_path)["status"] == "interrupted"
    assert History.load(tmp_path).series("loss").index.max() == 120


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be >= 1, got 0"),
        ({"steps": 5, "epochs": 1}, "give steps or epochs, not both"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"clip_norm": 0.0}, "clip_norm must be > 0"),
        ({"l2": -1.0}, "l2 must be >= 0"),
        ({"optimizer": "adamax"}, "unknown optimizer"),
        ({"schedule": "warmup"}, "unknown schedule"),
    ],
    ids=["steps", "steps-and-epochs", "batch", "clip", "l2", "optimizer", "schedule"],
)
def test_bad_arguments_are_refused_before_training(tmp_path, spirals, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gs.fit(small_net(spirals), spirals, run_dir=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_hessian_schedule_sets_lr_to_one_over_lambda_max(spirals):
    model = small_net(spirals)
    x, y = spirals.split("train")
    expected = gs.curvature.eigenvalues(model, spirals.loss_fn, (x[:64], y[:64]), k=1, which="LA")
    result = gs.fit(
        model,
        spirals,
        lr=0.1,
        steps=3,
        batch_size=64,
        schedule="hessian",
        schedule_options={"every": 100},
    )
    assert result.history.series("lr").iloc[0] == pytest.approx(
        1 / float(expected.values[0]), rel=1e-2
    )


def test_bad_watch_options_leave_no_run_directory(tmp_path, spirals):
    with pytest.raises(ValueError, match="every must be an int"):
        gs.fit(small_net(spirals), spirals, run_dir=tmp_path / "run", watch={"every": -1})
    assert not (tmp_path / "run").exists()
