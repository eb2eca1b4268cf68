import math

import pytest
import torch

from gradsight.train import build_optimizer, build_schedule


def learning_rates(name: str, steps: int, optimizer: str = "sgd", **options) -> list[float]:
    opt = build_optimizer(optimizer, torch.nn.Linear(2, 2).parameters(), 1.0)
    schedule = build_schedule(name, opt, steps, **options)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if schedule is not None:
            schedule.step()
    return rates


def test_constant_keeps_the_rate():
    assert learning_rates("constant", 10) == [1.0] * 10


def test_step_divides_by_ten_each_third():
    rates = learning_rates("step", 9)
    assert rates == pytest.approx([1.0] * 3 + [0.1] * 3 + [0.01] * 3)


def test_cosine_follows_the_formula():
    steps = 20
    expected = [(1 + math.cos(math.pi * t / steps)) / 2 for t in range(steps)]
    assert learning_rates("cosine", steps) == pytest.approx(expected, abs=1e-12)


def test_cyclic_is_triangular_between_a_tenth_and_lr():
    rates = learning_rates("cyclic", 80, cycles=4)  # half-cycle of 10 steps
    assert rates[0] == pytest.approx(0.1)
    assert rates[10] == pytest.approx(1.0)
    assert rates[20] == pytest.approx(0.1)
    assert rates[5] == pytest.approx(0.55)  # linear in between
    assert max(rates) == pytest.approx(1.0) and min(rates) == pytest.approx(0.1)


def test_one_cycle_warms_up_then_anneals_far_below():
    rates = learning_rates("one_cycle", 100, optimizer="adam")
    peak = max(range(100), key=rates.__getitem__)
    assert 25 <= peak <= 35
    assert rates[0] == pytest.approx(1.0 / 25)
    assert rates[-1] < 1e-3


def test_unknown_schedule_lists_the_names():
    opt = build_optimizer("sgd", torch.nn.Linear(2, 2).parameters(), 1.0)
    with pytest.raises(ValueError, match="choose one of: constant, step, cosine, cyclic"):
        build_schedule("warmup", opt, 10)
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        build_schedule("cosine", opt, 10, gamma=0.5)


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("constant", {"warmup_steps": 4}, [0.2, 0.4, 0.6, 0.8] + [1.0] * 6),
        (
            "step",
            {"warmup_fraction": 0.4, "step_size": 3},
            [0.2, 0.4, 0.6, 0.8, 1, 1, 1, 0.1, 0.1, 0.1],
        ),
        (
            "cosine",
            {"warmup_steps": 2},
            [1 / 3, 2 / 3] + [(1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)],
        ),
    ],
    ids=["constant", "step", "cosine"],
)
def test_warmup_ramps_linearly_then_runs_the_schedule(name, options, expected):
    assert learning_rates(name, 10, **options) == pytest.approx(expected, abs=1e-12)


def test_warmup_options_are_checked():
    opt = build_optimizer("sgd", torch.nn.Linear(2, 2).parameters(), 1.0)
    with pytest.raises(ValueError, match="not both"):
        build_schedule("constant", opt, 10, warmup_steps=2, warmup_fraction=0.1)
    with pytest.raises(ValueError, match="warmup_fraction must be in"):
        build_schedule("constant", opt, 10, warmup_fraction=1.5)
    with pytest.raises(ValueError, match="warmup_steps must be in"):
        build_schedule("constant", opt, 10, warmup_steps=10)
    with pytest.raises(ValueError, match="sets the rate's start itself"):
        build_schedule("one_cycle", opt, 10, warmup_steps=2)
    assert build_schedule("constant", opt, 10, warmup_fraction=0.0) is None  # no warm-up
