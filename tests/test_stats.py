import math

import numpy as np
import pandas as pd
import pytest

from gradsight.stats import (
    bootstrap_ci,
    geometric_mean,
    mean_spread,
    spread_where,
    t_interval,
    values_where,
)


def test_mean_spread_matches_numpy():
    values = [1.0, 2.0, 4.0]
    s = mean_spread(values)
    assert s.mean == pytest.approx(7 / 3, rel=1e-12)
    assert s.std == pytest.approx(float(np.std(values, ddof=1)), rel=1e-12)
    assert (s.low, s.high, s.n) == (1.0, 4.0, 3)


def test_mean_spread_of_one_value_has_no_spread():
    assert mean_spread([3.0]) == (3.0, 0.0, 3.0, 3.0, 1)


def test_mean_spread_needs_values():
    with pytest.raises(ValueError, match="at least one"):
        mean_spread([])


def test_bootstrap_ci_covers_the_mean_and_is_deterministic():
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 1.0, size=200)
    low, high = bootstrap_ci(values, seed=1)
    assert low < values.mean() < high
    # The normal-theory interval is mean +- 1.96 s / sqrt(n); the bootstrap agrees loosely.
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert high - low == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_ci(values, seed=1) == (low, high)


def test_bootstrap_ci_of_one_value_and_bad_level():
    assert bootstrap_ci([2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0, 2.0], level=1.5)


def test_t_interval_is_the_student_interval():
    values = [1.0, 2.0, 4.0]
    low, high = t_interval(values)
    # t_{2, 0.975} = 4.302652729749464
    half = 4.302652729749464 * np.std(values, ddof=1) / math.sqrt(3)
    assert (low, high) == pytest.approx((7 / 3 - half, 7 / 3 + half), rel=1e-12)
    assert t_interval([2.0]) == (2.0, 2.0) == t_interval([2.0, 2.0])
    with pytest.raises(ValueError, match="level"):
        t_interval(values, level=0.0)


def test_two_seeds_bootstrap_is_their_range_and_t_is_wider():
    assert bootstrap_ci([1.0, 3.0]) == (1.0, 3.0)
    low, high = t_interval([1.0, 3.0])
    assert low < 1.0 - 10 and high > 3.0 + 10  # t_{1, 0.975} = 12.7


def test_values_where_and_spread_where_select_rows_in_order():
    frame = pd.DataFrame(
        {"rule": ["a", "b", "a", "b"], "seed": [0, 0, 1, 1], "acc": [0.5, 0.25, 0.75, 1.0]}
    )
    np.testing.assert_array_equal(values_where(frame, "acc", rule="a"), [0.5, 0.75])
    np.testing.assert_array_equal(values_where(frame, "acc", rule="b", seed=1), [1.0])
    assert spread_where(frame, "acc", rule="b") == mean_spread([0.25, 1.0])
    with pytest.raises(ValueError, match="at least one"):
        spread_where(frame, "acc", rule="c")


def test_geometric_mean_ignores_what_a_log_cannot_take():
    assert geometric_mean([1e-8, 1e-2]) == pytest.approx(1e-5, rel=1e-12)
    assert geometric_mean([1e-8, 1e-2, 0.0, -1.0, np.inf, np.nan]) == pytest.approx(1e-5)
    assert math.isnan(geometric_mean([0.0, np.nan]))
    rows = np.array([[1.0, 4.0], [100.0, 0.0]])
    np.testing.assert_allclose(geometric_mean(rows, axis=0), [10.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(geometric_mean(rows, axis=1), [2.0, 100.0], rtol=1e-12)
