import math

import numpy as np
import pytest

from gradsight.stats import bootstrap_ci, mean_spread


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
