import itertools
import math

import pytest
import torch
from torch import nn

import gradsight as gs
from gradsight.telemetry import History, Watch, watch
from gradsight.telemetry.stats import SATURATION_DERIVATIVE_FRACTION


def mlp(activation=nn.ReLU, sizes=(6, 16, 16, 3), seed=0, dropout=0.0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def batch(n=32, seed=1, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g) * scale, torch.randint(0, 3, (n,), generator=g)


def train(model, optimizer, steps, w=None, x=None, y=None, seed=1):
    losses = []
    for step in range(steps):
        xb, yb = batch(seed=seed + step) if x is None else (x, y)
        loss = nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if w is not None:
            w.log(loss=loss)
        losses.append(loss.detach())
    return losses


def value(history: History, name: str, layer: str = "", step: int = 0) -> float:
    return float(history.series(name, layer).loc[step])


def test_gradient_norms_equal_the_hand_computed_ones():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0 keeps .grad inspectable
    with watch(model, optimizer) as w:
        train(model, optimizer, 1)
    for name in ("0", "2", "4"):
        layer = model.get_submodule(name)
        expected = torch.cat([layer.weight.grad.flatten(), layer.bias.grad.flatten()])
        assert value(w.history, "grad/norm", name) == pytest.approx(
            expected.norm().item(), rel=1e-6
        )
        assert value(w.history, "grad/max_abs", name) == pytest.approx(
            expected.abs().max().item(), rel=1e-6
        )
    everything = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert value(w.history, "grad/norm_global") == pytest.approx(everything.norm().item(), rel=1e-6)


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.Adam(p, lr=1e-2),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_update_ratio_is_the_measured_change_of_the_weights(make_optimizer):
    model = mlp()
    optimizer = make_optimizer(model.parameters())
    train(model, optimizer, 3)  # momentum/Adam state, so the update is not lr * grad
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with watch(model, optimizer, updates_every=1) as w:
        train(model, optimizer, 1, seed=9)
    for name in ("0", "2", "4"):
        new = [p.detach() for n, p in model.named_parameters() if n.startswith(name + ".")]
        old = [before[n] for n, _ in model.named_parameters() if n.startswith(name + ".")]
        delta = torch.cat([(a - b).flatten() for a, b in zip(new, old, strict=True)]).norm()
        weight = torch.cat([a.flatten() for a in new]).norm()
        assert value(w.history, "update/norm", name) == pytest.approx(delta.item(), rel=1e-5)
        assert value(w.history, "weight/norm", name) == pytest.approx(weight.item(), rel=1e-6)
        assert value(w.history, "update/ratio", name) == pytest.approx(
            (delta / weight).item(), rel=1e-5
        )


def test_dead_units_of_a_relu_layer_pushed_negative_and_of_a_fresh_he_layer():
    model = mlp()
    for layer in (model[0], model[2]):
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    with torch.no_grad():
        model[2].bias.fill_(-100.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with watch(model, optimizer, activations_every=1) as w:
        train(model, optimizer, 1)
    assert value(w.history, "act/dead", "1") == 0.0
    assert value(w.history, "act/dead", "3") == 1.0
    assert value(w.history, "act/zero_frac", "3") == 1.0


@pytest.mark.parametrize(
    ("scale", "low", "high"), [(100.0, 0.9, 1.0), (0.01, 0.0, 0.01)], ids=["x100", "x0.01"]
)
def test_tanh_saturation_follows_the_input_scale(scale, low, high):
    model = mlp(nn.Tanh, sizes=(6, 64, 3))
    nn.init.xavier_normal_(model[0].weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = batch(256, scale=scale)
    with watch(model, optimizer, activations_every=1) as w:
        train(model, optimizer, 1, x=x, y=y)
    saturated = value(w.history, "act/saturated", "1")
    assert low <= saturated <= high
    t = torch.tanh(model[0](x))  # reference: derivative below 5% of its maximum
    reference = (1 - t**2 < SATURATION_DERIVATIVE_FRACTION).float().mean().item()
    assert saturated == pytest.approx(reference, abs=1e-6)


def test_activation_moments_match_the_tensor():
    model = mlp(nn.Sigmoid)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = batch()
    with watch(model, optimizer, activations_every=1, histograms=True) as w:
        train(model, optimizer, 1, x=x, y=y)
    h = torch.sigmoid(model[0](x)).double()
    assert value(w.history, "act/mean", "1") == pytest.approx(h.mean().item(), rel=1e-5)
    assert value(w.history, "act/std", "1") == pytest.approx(h.std(unbiased=False).item(), rel=1e-3)
    pre = model[0](x).double()
    assert value(w.history, "act/mean", "0") == pytest.approx(pre.mean().item(), abs=1e-6)
    frame = w.history.frame()
    bins = frame[(frame["layer"] == "1") & frame["name"].str.startswith("act/hist/")]
    assert len(bins) == 20 and bins["value"].sum() == pytest.approx(1.0)


def test_output_gradient_norms_equal_autograd():
    model = mlp(nn.Tanh)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = batch()
    with watch(model, optimizer, activations_every=1) as w:
        train(model, optimizer, 1, x=x, y=y)
    outputs = {}
    h = x
    for name, layer in model.named_children():
        h = layer(h)
        outputs[name] = h
    loss = nn.functional.cross_entropy(h, y)
    grads = torch.autograd.grad(loss, list(outputs.values()))
    for name, grad in zip(outputs, grads, strict=True):
        assert value(w.history, "act/grad_norm", name) == pytest.approx(
            grad.norm().item(), rel=1e-5
        )


def test_hidden_state_gradient_norm_per_time_step_equals_autograd():
    model = gs.models.rnn(2, 8, 1, cell="rnn", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.randn(16, 7, 2, generator=torch.Generator().manual_seed(0))
    target = torch.randn(16, 1, generator=torch.Generator().manual_seed(1))
    with watch(model, optimizer, activations_every=1) as w:
        loss = nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
    out, hiddens = model(x, return_hidden=True)
    grads = torch.autograd.grad(nn.functional.mse_loss(out, target), hiddens)
    layers = [layer for layer in w.history.layers("act/grad_norm") if "[" in layer]
    assert len(layers) == 7
    for t, grad in enumerate(grads):
        assert value(w.history, "act/grad_norm", f"hidden_tap[{t}]") == pytest.approx(
            grad.norm().item(), rel=1e-5
        )


def test_watching_does_not_change_training_bit_for_bit():
    def run(watched: bool):
        model = mlp(dropout=0.5, seed=3)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        torch.manual_seed(11)
        if watched:
            with watch(
                model, optimizer, every=1, updates_every=1, activations_every=1, histograms=True
            ) as w:
                losses = train(model, optimizer, 50, w)
        else:
            losses = train(model, optimizer, 50)
        return (
            torch.stack(losses),
            [p.detach().clone() for p in model.parameters()],
            torch.get_rng_state(),
        )

    bare, watched = run(False), run(True)
    assert torch.equal(bare[0], watched[0])
    assert all(torch.equal(a, b) for a, b in zip(bare[1], watched[1], strict=True))
    assert torch.equal(bare[2], watched[2])


def test_schedules_decide_which_steps_are_logged():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, optimizer, every=2, updates_every=3, activations_every=5) as w:
        train(model, optimizer, 10, w)
    assert w.history.series("grad/norm", "0").index.tolist() == [0, 2, 4, 6, 8]
    assert w.history.series("update/ratio", "0").index.tolist() == [0, 3, 6, 9]
    assert w.history.series("act/mean", "1").index.tolist() == [0, 5]
    assert w.history.series("act/drift", "1").index.tolist() == [5]
    assert w.history.series("loss").index.tolist() == list(range(10))
    assert w.history.series("lr").tolist() == [0.01] * 10


def test_one_host_sync_per_logged_step(monkeypatch):
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    calls = {"n": 0}
    original = torch.Tensor.cpu

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    def forbidden(self, *args):
        pytest.fail("a host sync other than the step's transfer")

    with watch(model, optimizer, every=4, updates_every=4, activations_every=4) as w:
        monkeypatch.setattr(torch.Tensor, "cpu", counting)
        for name in ("item", "tolist", "__bool__", "__float__"):
            monkeypatch.setattr(torch.Tensor, name, forbidden)
        train(model, optimizer, 12, w)
        monkeypatch.undo()
    assert calls["n"] == 3  # steps 0, 4, 8; each also carries the losses logged before it
    assert w.history.series("loss").index.tolist() == list(range(12))


def test_gradient_accumulation_reports_the_accumulated_gradient():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with watch(model, optimizer) as w:
        optimizer.zero_grad()
        for seed in (1, 2, 3):
            x, y = batch(seed=seed)
            nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    assert value(w.history, "grad/norm_global") == pytest.approx(
        torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item(), rel=1e-6
    )
    assert w.history.series("grad/norm_global").index.tolist() == [0]


def test_watch_without_an_optimizer_uses_step():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, updates_every=1) as w:
        for _ in range(3):
            train(model, optimizer, 1)
            w.step()
    assert w.history.series("grad/norm", "0").index.tolist() == [0, 1, 2]
    assert w.history.series("update/ratio", "0").index.tolist() == [1, 2]
    with pytest.raises(RuntimeError, match="do not call step"), watch(model, optimizer) as w2:
        w2.step()


def poison(module: nn.Module) -> dict:
    """While `switch["on"]`, `module` outputs NaN (deterministically, so a replay sees it too)."""
    switch = {"on": False}
    module.register_forward_hook(lambda m, a, out: out * torch.nan if switch["on"] else None)
    return switch


def train_with_nan_at(model, optimizer, w, steps, bad_step, switch):
    for step in range(steps):
        switch["on"] = step == bad_step
        x, y = batch(seed=step)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        w.log(loss=loss)
        if w.stopped:
            break
    switch["on"] = False


def test_a_nan_in_one_module_is_reported_with_its_name_and_step():
    model = mlp(sizes=(6, 16, 16, 16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    switch = poison(model[2])
    expected = "non-finite gradient at step 4.*output of '2'"
    with pytest.warns(RuntimeWarning, match=expected), watch(model, optimizer) as w:
        train_with_nan_at(model, optimizer, w, 8, 4, switch)
    assert w.nonfinite.step == 4 and w.nonfinite.module == "2"
    assert w.nonfinite.param == "0.weight"  # NaN reaches every gradient; the first is named
    assert w.history.series("nonfinite/module", "2").index.tolist() == [4]


def test_the_replay_changes_neither_rng_nor_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 3)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    switch = poison(model[0])
    w = watch(model, optimizer, on_nonfinite="stop")
    switch["on"] = True
    x, y = batch()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    rng, running = torch.get_rng_state(), model[1].running_mean.clone()
    optimizer.step()  # the pre-hook replays the forward
    assert torch.equal(torch.get_rng_state(), rng)
    assert (
        torch.equal(
            model[1].running_mean,
            running,
        )
        or torch.isnan(running).all()
    )
    assert w.nonfinite.module == "0"
    w.close()


def test_on_nonfinite_raise_keeps_the_weights_clean():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    switch = poison(model[0])
    w = watch(model, optimizer, on_nonfinite="raise")
    with pytest.raises(FloatingPointError, match="step 1"):
        train_with_nan_at(model, optimizer, w, 3, 1, switch)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the step never ran
    w.close()


def test_on_nonfinite_stop_sets_the_flag():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    switch = poison(model[0])
    with watch(model, optimizer, on_nonfinite="stop") as w:
        train_with_nan_at(model, optimizer, w, 5, 2, switch)
    assert w.stopped and w.nonfinite.step == 2


def test_hooks_are_removed_on_exit_also_after_an_error():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    counts = lambda: (  # noqa: E731
        sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
        len(optimizer._optimizer_step_pre_hooks) + len(optimizer._optimizer_step_post_hooks),
    )
    bare = counts()
    with pytest.raises(ZeroDivisionError), watch(model, optimizer):
        assert counts() != bare
        raise ZeroDivisionError
    assert counts() == bare


def test_watching_a_model_twice_gives_the_same_numbers():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, optimizer) as a, watch(model, optimizer) as b:
        train(model, optimizer, 3, a)
    pd_a = a.history.series("grad/norm", "0")
    assert pd_a.equals(b.history.series("grad/norm", "0"))


def test_log_refuses_non_scalars():
    model = mlp()
    with watch(model, torch.optim.SGD(model.parameters(), lr=0.1)) as w:
        with pytest.raises(ValueError, match="must be a scalar"):
            w.log(loss=torch.ones(3))
        with pytest.raises(ValueError, match="must be a number or a tensor"):
            w.log(loss="low")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": -1}, "every must be an int >= 0"),
        ({"on_nonfinite": "ignore"}, "on_nonfinite"),
        ({"flush_every": 0}, "flush_every must be >= 1"),
    ],
    ids=["every", "on_nonfinite", "flush_every"],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Watch(mlp(), **kwargs)


def test_run_dir_gets_run_json_and_parts(tmp_path):
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, optimizer, run_dir=tmp_path, flush_every=5) as w:
        train(model, optimizer, 12, w)
    assert gs.telemetry.read_run(tmp_path)["status"] == "finished"
    assert len(list((tmp_path / "metrics").glob("part-*.parquet"))) == 3
    loaded = History.load(tmp_path)
    assert loaded.series("loss").index.tolist() == list(range(12))
    assert not any(math.isnan(v) for v in loaded.series("grad/norm_global"))


def test_fit_with_watch_records_per_layer_statistics():
    task = gs.data.load("spirals", n_train=200, n_test=50)
    model = gs.models.mlp(2, 3, depth=3, width=16, seed=0)
    result = gs.fit(model, task, lr=0.1, steps=20, watch={"activations_every": 5})
    history = result.history
    assert history.layers("grad/norm") == ["fc1", "fc2", "fc3"]
    assert history.series("act/dead", "act1").index.tolist() == [0, 5, 10, 15]
    plain = gs.fit(gs.models.mlp(2, 3, depth=3, width=16, seed=0), task, lr=0.1, steps=20)
    assert plain.history.names() == ["lr", "loss", "test/loss", "test/accuracy"]
    assert plain.history.series("loss").tolist() == history.series("loss").tolist()


def test_drift_is_zero_for_an_unchanged_distribution_and_grows_with_a_shift():
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = batch(256)
    with watch(model, optimizer, activations_every=1) as w:
        train(model, optimizer, 2, x=x, y=y)
        train(model, optimizer, 1, x=x + 3.0, y=y)
    drift = w.history.series("act/drift", "0")
    assert drift.loc[1] == pytest.approx(0.0, abs=1e-9)
    assert drift.loc[2] > 0.5


def test_conv_units_are_channels():
    model = gs.models.cnn((1, 8, 8), 10, channels=(4, 8), activation="relu", seed=0)
    with torch.no_grad():
        model.conv1.bias.fill_(-100.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    x = torch.randn(16, 64)
    with watch(model, optimizer, activations_every=1) as w:
        nn.functional.cross_entropy(model(x), torch.zeros(16, dtype=torch.long)).backward()
        optimizer.step()
    assert value(w.history, "act/dead", "act1") == 1.0
    # act1 is all zero, so conv2 outputs its bias: a channel is dead iff its bias is <= 0.
    expected = (model.conv2.bias <= 0).float().mean().item()
    assert value(w.history, "act/dead", "act2") == pytest.approx(expected)


def test_curvature_every_logs_the_hessian_extremes_and_leaves_training_alone():
    task = gs.data.load("spirals", n_train=128, n_test=32)

    def run(watch):
        model = gs.models.mlp(2, 3, depth=3, width=8, activation="tanh", seed=0)
        return gs.fit(model, task, lr=0.1, steps=12, batch_size=32, watch=watch)

    plain, curved = run({}), run({"curvature_every": 5})
    assert curved.history.series("loss").tolist() == plain.history.series("loss").tolist()
    lambda_max = curved.history.series("curv/lambda_max")
    lambda_min = curved.history.series("curv/lambda_min")
    assert lambda_max.index.tolist() == [0, 5, 10]
    assert (lambda_max > 0).all() and (lambda_min <= lambda_max).all()
    assert curved.history.series("grad/norm_global").index.tolist() == list(range(12))


def test_curvature_needs_a_batch_and_a_loss():
    with pytest.raises(ValueError, match="curvature_every needs"):
        Watch(mlp(), curvature_every=5)
